"Two-process DDP on CPU through accelerate launch: the world size really is 2 and the replicas stay identical."
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest
from conftest import free_port

def launch(run, mode):
    accel = shutil.which('accelerate', path=os.path.dirname(sys.executable)) or shutil.which('accelerate')
    cmd = [accel, 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1', '--mixed_precision', 'no',
           '--dynamo_backend', 'no', '--main_process_port', str(free_port()), str(Path(__file__).parent / 'ddp_train.py'),
           str(run), mode]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, 'ACCELERATE_USE_CPU': 'true'})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    ranks = [json.loads((run / f'rank{i}.json').read_text()) for i in range(2)]
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
    with RunStore(tmp_path / 'run' / 'store.sqlite') as st: assert st.array_steps('routing_map') == [4, 8]

def test_dydit_two_forwards_per_step_under_ddp(tmp_path):
    "Stage 1 runs the DDP model twice per step (dynamic and complete); the routers stay identical across ranks."
    ranks = launch(tmp_path / 'run', 'dydit')
    assert ranks[0]['routers'] == ranks[1]['routers']
