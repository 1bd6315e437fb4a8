"Two-process DDP on CPU through accelerate launch: the world size really is 2 and the replicas stay identical."
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import free_port

pytestmark = pytest.mark.slow                     # each test launches two processes through accelerate

def launch_ranks(run, mode):
    "Run tests/ddp_train.py in `mode` on two CPU processes through accelerate launch; each rank's JSON report."
    accel = shutil.which('accelerate', path=os.path.dirname(sys.executable)) or shutil.which('accelerate')
    cmd = [accel, 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1', '--mixed_precision', 'no',
           '--dynamo_backend', 'no', '--main_process_port', str(free_port()), str(Path(__file__).parent / 'ddp_train.py'),
           str(run), mode]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, 'ACCELERATE_USE_CPU': 'true'})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return [json.loads((run / f'rank{i}.json').read_text()) for i in range(2)]

def launch(run, mode):
    ranks = launch_ranks(run, mode)
    assert [d['world'] for d in ranks] == [2, 2]                      # two connected processes, not two world-size-1 runs
    assert ranks[0]['model'] == ranks[1]['model']                     # gradients were all-reduced: identical replicas
    assert ranks[0]['ema'] == ranks[1]['ema']
    assert ranks[0]['first_labels'] != ranks[1]['first_labels']       # but each rank read its own shard of the data
    return ranks

def test_two_process_cpu_ddp(tmp_path):
    ranks = launch(tmp_path / 'run', 'importance')
    assert ranks[0]['sampler'] == ranks[1]['sampler']                 # the importance sampler saw every rank's losses
    from fastdit_lab.train.store import RunStore
    with RunStore(tmp_path / 'run' / 'store.sqlite') as st: assert st.meta()['num_processes'] == 2

def test_adaptive_sampler_and_instrument_under_ddp(tmp_path):
    ranks = launch(tmp_path / 'run', 'adaptive')
    assert ranks[0]['sampler'] == ranks[1]['sampler']                 # the policy is updated identically on every rank
    assert ranks[0]['selected'] == ranks[1]['selected']
    assert ranks[0]['grad_var'] == ranks[1]['grad_var']               # per-rank estimates averaged over ranks

def test_maskdit_with_unmasking_stage_under_ddp(tmp_path):
    "Masked steps, then mask ratio 0: DDP must not stop on the mask token that no longer gets a real gradient."
    ranks = launch(tmp_path / 'run', 'maskdit')
    assert ranks[0]['mask_token'] == ranks[1]['mask_token']
    from fastdit_lab.train.store import RunStore
    with RunStore(tmp_path / 'run' / 'store.sqlite') as st: assert st.array_steps('plan/routing_map') == [4, 8]

def test_dydit_two_forwards_per_step_under_ddp(tmp_path):
    "Stage 1 runs the DDP model twice per step (dynamic and complete); the routers stay identical across ranks."
    ranks = launch(tmp_path / 'run', 'dydit')
    assert ranks[0]['routers'] == ranks[1]['routers']

def test_fsdp_shards_and_trains_like_ddp(tmp_path):
    """FSDP2 on two CPU processes: each rank holds its own half of every block weight; 8 steps give the weights, EMA and
    Adam state of the same run under DDP; k steps + resume gives the uninterrupted run; one process resumes it unsharded."""
    import dataclasses, torch
    from fastdit_lab.core import config_from_dict
    from fastdit_lab.train.checkpoint import load_latest
    from fastdit_lab.train.config import TrainConfig
    from fastdit_lab.train.trainer import Trainer
    ranks = launch_ranks(tmp_path / 'fsdp', 'fsdp')
    assert [d['world'] for d in ranks] == [2, 2] and all(d['sharded'] for d in ranks)
    assert ranks[0]['full_shape'] == [576, 192] and [d['local_shape'] for d in ranks] == [[288, 192], [288, 192]]
    assert ranks[0]['local'] != ranks[1]['local']                      # two different halves, not two copies
    launch_ranks(tmp_path / 'ddp', 'fsdp-ddp')
    shutil.copytree(tmp_path / 'fsdp', tmp_path / 'resumed')          # k = 4: resume from the step-4 checkpoint
    shutil.rmtree(tmp_path / 'resumed' / 'checkpoints' / 'step_0000008')
    launch_ranks(tmp_path / 'resumed', 'fsdp')
    fsdp, ddp, resumed = (load_latest(tmp_path / r / 'checkpoints') for r in ('fsdp', 'ddp', 'resumed'))
    assert fsdp['step'] == ddp['step'] == resumed['step'] == 8
    assert fsdp['state']['opt_format'] == 'full' and ddp['state']['opt_format'] == 'index'
    for other in (ddp, resumed):
        for part in ('model', 'ema'):
            assert set(fsdp[part]) == set(other[part])
            for k, v in fsdp[part].items(): torch.testing.assert_close(v, other[part][k], rtol=1e-5, atol=1e-6)
    # Adam's state: keyed by parameter name (sharded) and by position (DDP), in the same param-group order
    fo, do = fsdp['state']['opt'], ddp['state']['opt']
    pairs = [(k, i) for fg, dg in zip(fo['param_groups'], do['param_groups']) for k, i in zip(fg['params'], dg['params'])]
    assert len(pairs) == len(do['state']) > 0
    for k, i in pairs:
        for m in ('exp_avg', 'exp_avg_sq'): torch.testing.assert_close(fo['state'][k][m], do['state'][i][m], rtol=1e-5, atol=1e-8)
    # the sharded checkpoint resumes in one unsharded process (fsdp with one process has nothing to shard)
    saved = json.loads((tmp_path / 'fsdp' / 'config.json').read_text()); saved.pop('version')
    tr = Trainer(dataclasses.replace(config_from_dict(TrainConfig, saved), steps=10), quiet=True)
    assert (tr.step, tr.sharded, len(tr.opt.state)) == (8, False, sum(p.requires_grad for p in tr.net.parameters()))
    tr.fit()
    assert load_latest(tmp_path / 'fsdp' / 'checkpoints')['step'] == 10

def test_fsdp_maskdit_decoder_and_routing_maps(tmp_path):
    "MaskDiT's decoder blocks are sharded too; rank 0 records the routing maps without the other rank (from the EMA)."
    ranks = launch_ranks(tmp_path / 'run', 'fsdp-maskdit')
    assert all(d['sharded'] for d in ranks) and ranks[0]['decoder_local_shape'] == [ranks[0]['decoder_full_shape'][0] // 2,
                                                                                    ranks[0]['decoder_full_shape'][1]]
    from fastdit_lab.train.store import RunStore
    with RunStore(tmp_path / 'run' / 'store.sqlite') as st: assert st.array_steps('plan/routing_map') == [4, 8]
