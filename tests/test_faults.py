"""The trainer used by a hostile user: every checkpoint damaged, a blow-up, a lost or edited config.json, a folder dataset
without a size, a damaged download, bad commands, pre-emption; then a seeded random sequence of all of them.

Each test names the failure it guards against: a run that silently restarts, mixes two trajectories in its store,
deletes its last good checkpoint, prints a traceback for bad input, leaves a half-written run folder, or exits 0 when
it was pre-empted."""
import contextlib, gzip, hashlib, io, json, multiprocessing, os, random, re, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from conftest import ROOT, wait_until
from fastdit_lab.cli import main
from fastdit_lab.data import write_idx
from fastdit_lab.train.checkpoint import list_checkpoints, load_checkpoint
from fastdit_lab.train.store import RunStore

pytestmark = pytest.mark.slow                     # whole training runs through the command line, faults injected

# a tiny SiT run: DiT-T/4 on 8-px shapes, 4 images a step, a checkpoint every 4 steps
TINY = ['train', '--recipe', 'sit', '--model', 'DiT-T/4', '--image-size', 8, '--batch-size', 4, '--log-every', 2,
        '--ckpt-every', 4, '--sample-n', 4, '--sample-steps', 1]

def cli(*args) -> tuple[int, str, list[str]]:
    "Run `fastdit *args` in this process -> (exit status, stdout, stderr lines); an exception it lets through fails the test."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: main([str(a) for a in args]); code = 0
        except SystemExit as e: code = e.code if isinstance(e.code, int) else int(e.code is not None)
    return code, out.getvalue(), err.getvalue().strip().splitlines()

def refused(args, *says, status=2) -> str:
    "Run `args`: exit `status`, one `fastdit: error:` line holding each of `says` (after warnings if not 2); -> that line."
    code, _, err = cli(*args)
    assert code == status and err and err[-1].startswith('fastdit: error:'), (args, code, err)
    assert all(e.startswith('fastdit: warning:') for e in err[:-1]) and (status != 2 or len(err) == 1), err
    for s in says: assert s in err[-1], (s, err[-1])
    return err[-1]

def flip(path:Path, at:float=0.5):
    "Flip one byte of `path` at fraction `at` of its length (a bad disk, not a cut)."
    b = bytearray(path.read_bytes()); b[int(len(b) * at)] ^= 0xFF; path.write_bytes(bytes(b))

def snapshot(folder:Path) -> dict:
    "{relative path: sha256} of every file under `folder`: what a refused command must leave as it was."
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob('*')) if p.is_file()}

def store_steps(run:Path) -> list[int]:
    with RunStore(run / 'store.sqlite') as st: return st.scalars()['step'].values.tolist()

def finite(ck:Path) -> bool:
    "Whether the weights and EMA weights in checkpoint folder `ck` are finite (read here, not by the trainer's check)."
    return all(bool(torch.isfinite(v).all()) for f in ('model.safetensors', 'ema.safetensors')
               for v in load_file(str(ck / f)).values() if v.is_floating_point())

# 1. every checkpoint damaged: main trained from step 0 silently, mixed the store and rotated the new checkpoints away
def test_all_checkpoints_damaged_is_refused_then_restart_archives(tmp_path):
    run = tmp_path / 'run'
    assert cli(*TINY, '--steps', 8, '--run-dir', run)[0] == 0
    old = [c.name for c in list_checkpoints(run / 'checkpoints')]
    for ck in list_checkpoints(run / 'checkpoints'): flip(ck / 'ema.safetensors')
    before = snapshot(run)
    line = refused([*TINY, '--steps', 16, '--run-dir', run], f'Run {run} has no good checkpoint',
                   'ema.safetensors does not match its checksum', '--restart')
    assert all(n in line for n in old), line                                  # each damaged checkpoint named
    assert snapshot(run) == before                                            # nothing changed, nothing written
    refused(['sample', run, '--out', tmp_path / 'g.png'], 'no good checkpoint', '--restart')   # not "train it first"
    assert not (tmp_path / 'g.png').exists()
    code, out, _ = cli(*TINY, '--steps', 8, '--run-dir', run, '--restart')    # starting over is explicit...
    assert code == 0 and 'restarting' in out, out
    arch = run / 'archive' / '000'                                            # ...and archives, deleting nothing
    assert [c.name for c in list_checkpoints(arch / 'checkpoints')] == old and store_steps(arch) == [2, 4, 6, 8]
    assert store_steps(run) == [2, 4, 6, 8]                                   # the new trajectory alone
    assert [c.name for c in list_checkpoints(run / 'checkpoints')] == ['step_0000008', 'step_0000004']
    assert [e['event'] for e in json.loads((run / 'config.json').read_text())['history']] == ['restart']

def test_rotation_keeps_a_good_checkpoint_over_a_damaged_one(tmp_path):
    "A damaged checkpoint older than the newest good one: main kept it in the rotation and deleted the good one below it."
    run = tmp_path / 'run'
    assert cli(*TINY, '--steps', 12, '--run-dir', run)[0] == 0                # checkpoints 12, 8, 4 (three kept)
    flip(run / 'checkpoints' / 'step_0000008' / 'state.pt')
    code, out, err = cli(*TINY, '--steps', 16, '--run-dir', run)
    assert code == 0 and 'resumed' in out and 'step_0000012' in out, (out, err)
    assert len(err) == 1 and 'step_0000008' in err[0] and 'set aside' in err[0], err
    assert [c.name for c in list_checkpoints(run / 'checkpoints')] == ['step_0000016', 'step_0000012', 'step_0000004']
    assert (run / 'checkpoints' / 'bad' / 'step_0000008-damaged').is_dir()

# 2. a blow-up: main saved the blown-up weights as "the last good" ones, rotated the good one away on the same command
# again, and refused the --lr that would fix it
def max_abs(ck:Path) -> float:
    return max(float(v.abs().max()) for v in load_file(str(ck / 'model.safetensors')).values())

def test_blowup_stops_at_a_good_checkpoint_and_resumes_with_a_lower_lr(tmp_path):
    run = tmp_path / 'run'
    # lr 1e30 from step 8 on: that step is finite and writes its weights (max |w| ~ 1e30) into the step-8 checkpoint,
    # the next ones are not; one checkpoint kept, so only protecting the good one keeps it
    blow = [*TINY, '--steps', 24, '--max-nonfinite', 2, '--keep-ckpts', 1, '--stages', '[{"at_step": 7, "lr": 1e30}]',
            '--run-dir', run]
    line = refused(blow, 'Training stopped at step', 'from step 8 on', 'The last good checkpoint is', status=3)
    good = Path(re.search(r'The last good checkpoint is (\S+) \(kept', line).group(1))
    assert good.name == 'step_0000004' and finite(good) and max_abs(good) < 100
    assert list_checkpoints(run / 'checkpoints') == [good]                    # the newest: nothing blown-up in rotation
    blown = run / 'checkpoints' / 'bad' / 'step_0000008-nonfinite'            # set aside, not deleted
    assert max_abs(blown) > 1e20 and '1 written after it set aside' in line
    refused(blow, 'The last good checkpoint is', status=3)                    # the same command again: stops again...
    assert list_checkpoints(run / 'checkpoints') == [good] and finite(good)   # ...and keeps the good one
    fix = ['--lr', '1e-5', '--grad-clip', 1]                                   # the fix the message suggests
    code, out, err = cli(*blow, *fix, '--time-budget-s', 1e-9)                 # (a budget stops it after a step)
    assert code == 0 and 'resumed' in out and "lr 0.0001 -> 1e-05" in out, (out, err)
    steps = set(store_steps(run))                                             # no row of the blown-up trajectory
    assert {2, 4} <= steps and not steps & {6, 8, 10}, steps                  # left (6-10 were logged before the stop)
    code, out, err = cli(*blow, *fix, '--time-budget-s', 0)
    assert code == 0, err
    assert store_steps(run) in (list(range(2, 25, 2)), [2, 4, 5, *range(6, 25, 2)])   # (5: the budget stop's interval)
    hist = json.loads((run / 'config.json').read_text())['history']
    assert hist[-1]['event'] == 'resume' and hist[-1]['step'] == 4 and hist[-1]['changes']['lr'] == [1e-4, 1e-5]
    with RunStore(run / 'store.sqlite') as st: assert st.meta()['history'] == hist       # and in the store
    assert all(finite(c) for c in list_checkpoints(run / 'checkpoints'))

def test_blowup_rolls_back_by_itself_when_asked(tmp_path):
    "--nonfinite-retries: back to the last good checkpoint with a lower lr, logged, and no blown-up row left in the store."
    run = tmp_path / 'run'
    code, out, err = cli(*TINY, '--steps', 24, '--max-nonfinite', 2, '--stages', '[{"at_step": 7, "lr": 1e30}]',
                         '--nonfinite-retries', 1, '--nonfinite-lr-factor', 1e-34, '--run-dir', run)
    assert code == 0 and any('rolled back to step_0000004 (roll-back 1 of 1)' in e for e in err), err
    hist = json.loads((run / 'config.json').read_text())['history']
    assert [(e['event'], e['step']) for e in hist] == [('rollback', 4)] and hist[0]['changes']['lr'][0] == 1e30
    with RunStore(run / 'store.sqlite') as st: sc = st.scalars()
    losses = [sc[n].values for n in sc.data_vars if 'loss' in n]
    assert sc['step'].values.tolist() == list(range(2, 25, 2)) and losses and all(np.isfinite(v).all() for v in losses)

def test_a_gradient_blowup_is_told_from_a_loss_blowup(tmp_path):
    "With --lr 1e6 the loss stayed finite and only the gradients were not; main said the loss was not finite."
    from fastdit_lab.core import FastditError
    from fastdit_lab.train.callback import Callback
    from fastdit_lab.train.config import resolve_config
    from fastdit_lab.train.trainer import Trainer
    class InfiniteGradients(Callback):
        def after_backward(self, tr):
            if tr.step >= 5: tr.net.final_layer.linear.weight.grad.fill_(float('inf'))   # the loss stays finite
    cfg = resolve_config('sit', model='DiT-T/4', image_size=8, batch_size=4, steps=12, log_every=2, ckpt_every=2,
                         max_nonfinite=2, sample_n=4, sample_steps=1, run_dir=str(tmp_path / 'run'))
    with pytest.raises(FastditError) as e: Trainer(cfg, callbacks=[InfiniteGradients()], quiet=True).fit()
    msg = str(e.value)
    assert 'the gradients were not finite for 3 steps in a row while the loss was (last' in msg, msg
    assert 'resume from it with --grad-clip 1 or a lower --lr' in msg and 'step_0000004' in msg, msg

# 3. config.json lost or edited: main wrote the wrong config.json, then failed with a state-dict traceback
def test_config_json_lost_or_edited(tmp_path):
    run = tmp_path / 'run'
    assert cli(*TINY, '--steps', 4, '--run-dir', run)[0] == 0
    (run / 'config.json').unlink(); before = snapshot(run)
    refused([*TINY, '--model', 'DiT-T/2', '--steps', 8, '--run-dir', run], 'different model', "'DiT-T/4'")
    assert snapshot(run) == before and not (run / 'config.json').exists()     # nothing written
    code, _, err = cli(*TINY, '--steps', 8, '--run-dir', run)                 # the original command resumes
    assert code == 0 and any('config.json is missing' in e for e in err), err
    assert store_steps(run) == [2, 4, 6, 8] and json.loads((run / 'config.json').read_text())['model'] == 'DiT-T/4'
    cfg = json.loads((run / 'config.json').read_text()); cfg['model_args'] = {'depth': 6}
    (run / 'config.json').write_text(json.dumps(cfg)); before = snapshot(run)
    refused([*TINY, '--model-args', '{"depth": 6}', '--steps', 12, '--run-dir', run],
            'config.json of', 'does not match its checkpoint step_0000008', 'model_args')
    assert snapshot(run) == before

# 4. a folder dataset without --image-size: crashed in center_crop (image_size=None over the folder's default)
def test_folder_dataset_without_image_size(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for c in ('cats', 'dogs'):
        (tmp_path / 'imgs' / c).mkdir(parents=True)
        for i in range(4): Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(tmp_path / 'imgs' / c / f'{i}.png')
    args = [a for a in TINY if a not in ('--image-size', 8)]
    code, out, err = cli(*args, '--data', 'folder', '--data-dir', tmp_path / 'imgs', '--steps', 2, '--run-dir', tmp_path / 'run')
    assert code == 0, err
    with RunStore(tmp_path / 'run' / 'store.sqlite') as st: assert st.meta()['image_shape'] == [3, 32, 32]  # its default

# 5. a .gz download with flipped bytes (not cut short): main raised zlib.error with a traceback
def test_gzip_with_flipped_bytes_is_one_line(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / 'mnist'
    write_idx(d / 'train-images-idx3-ubyte.gz', (rng.random((64, 28, 28)) * 40).astype(np.uint8))
    write_idx(d / 'train-labels-idx1-ubyte.gz', rng.integers(0, 10, 64).astype(np.uint8))
    b = bytearray((d / 'train-images-idx3-ubyte.gz').read_bytes())
    b[10] |= 0b110                          # after the 10-byte gzip header: the first deflate block's type, now invalid
    (d / 'train-images-idx3-ubyte.gz').write_bytes(bytes(b))           # (a flip further on is mostly caught by the CRC)
    refused([*TINY, '--data', 'mnist', '--data-dir', tmp_path, '--steps', 1, '--runs-root', tmp_path / 'runs'],
            'train-images-idx3-ubyte.gz is corrupt', 'download it again')
    assert not (tmp_path / 'runs').exists()

# 6. bad names and sizes: main checked them after making runs/NNN-.../ (and, for the batch, store.sqlite)
def test_bad_input_leaves_no_run_folder(tmp_path):
    (tmp_path / 'junk.pt').write_bytes(b'not a checkpoint at all')
    cases = [(['--sampler', 'unifrom'], "'unifrom'"), (['--set', 'sampler.mean=0.5'], 'mean'),
             (['--image-size', 15], 'not divisible by the patch size'), (['--batch-size', 100_000], 'lower --batch-size'),
             (['--init-from', tmp_path / 'nothing.pt'], 'nothing.pt'), (['--init-from', tmp_path / 'junk.pt'], 'junk.pt')]
    for extra, says in cases:
        refused([*TINY, '--steps', 2, '--runs-root', tmp_path / 'runs', *extra], says)
        assert not (tmp_path / 'runs').exists() or not any((tmp_path / 'runs').iterdir()), (extra, list((tmp_path / 'runs').iterdir()))

# 7. SIGTERM: main checkpointed and exited 0, so a job script could not tell pre-emption from success; the warning for
# a damaged checkpoint took two lines, one of them a line of source code
def test_sigterm_exits_with_the_preempted_code_and_damage_warns_in_one_line(tmp_path):
    from fastdit_lab.cli import EXIT_CODES, EXIT_PREEMPTED
    run = tmp_path / 'run'
    p = subprocess.Popen([sys.executable, '-m', 'fastdit_lab.cli', *map(str, TINY), '--steps', '100000', '--log-every', '1',
                          '--run-dir', run], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stdout:
        if (m := re.search(r'step (\d{7})/', line)) and int(m.group(1)) >= 5: break      # past the checkpoint at 4
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=300)
    assert p.returncode == EXIT_PREEMPTED == 75 and 'Traceback' not in err, (p.returncode, err)
    assert 'pre-empted' in out and 75 in EXIT_CODES
    step = int(re.findall(r'stopping at step (\d+)', out)[0])
    assert load_checkpoint(list_checkpoints(run / 'checkpoints')[0])['step'] == step     # its own checkpoint
    assert not list((run / 'samples').iterdir())                              # the grace period went to the checkpoint
    flip(list_checkpoints(run / 'checkpoints')[0] / 'model.safetensors')
    r = subprocess.run([sys.executable, '-m', 'fastdit_lab.cli', *map(str, TINY), '--steps', str(step + 1), '--run-dir', run],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and f'step_{step:07d}' in lines[0] and 'does not match its checksum' in lines[0], lines
    assert (run / 'checkpoints' / 'bad' / f'step_{step:07d}-damaged').is_dir()   # set aside, not deleted
    readme = (ROOT / 'README.md').read_text()                                 # documented for job scripts
    assert all(f'| {k} | ' in readme for k in EXIT_CODES) and '| 75 | pre-empted' in readme
