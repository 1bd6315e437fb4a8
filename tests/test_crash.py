"""Kill training with SIGKILL at random moments and resume each time.

The run must complete; no checkpoint may ever be unreadable; each kill may lose at most one checkpoint interval of
work; the store must hold every logged step exactly once; and, because resuming is exact, the final weights must be
bit-identical to those of the same run trained without interruption."""
import json, os, random, re, signal, subprocess, sys, time
import pytest
import torch
from conftest import REFERENCE_ARGS as ARGS, REFERENCE_CKPT as CKPT, REFERENCE_STEPS as STEPS
from fastdit_lab.train.checkpoint import list_checkpoints, load_checkpoint
from fastdit_lab.train.store import RunStore

pytestmark = pytest.mark.slow

def launch(run_dir):
    return subprocess.Popen([sys.executable, '-m', 'fastdit_lab.cli', *map(str, ARGS), '--run-dir', str(run_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

def run_until_killed(run_dir, rng) -> tuple[int | None, bool]:
    "Launch a run and SIGKILL it: during start-up/resume a quarter of the time, else after a few new steps. -> (last step printed, killed)"
    p = launch(run_dir)
    last, target = None, None if rng.random() < 0.25 else rng.randint(1, 6)
    if target is None: time.sleep(rng.uniform(0.5, 3.0))        # somewhere in import, resume, or the first steps
    else:
        seen = 0
        for line in p.stdout:
            m = re.search(r'step (\d{7})/', line)
            if m: last, seen = int(m.group(1)), seen + 1
            if seen >= target: break
        time.sleep(rng.uniform(0.0, 0.05))                      # land anywhere in the following step or save
    if p.poll() is not None: p.communicate(); return last, False
    os.kill(p.pid, signal.SIGKILL)
    rest = p.communicate()[0]
    steps = [int(s) for s in re.findall(r'step (\d{7})/', rest)]
    return (steps[-1] if steps else last), True

def test_sigkill_and_resume(tmp_path, reference_run):
    rng = random.Random(0)
    run = tmp_path / 'killed'
    kills, lost = 0, []
    while kills < 12:
        last_step, killed = run_until_killed(run, rng)
        if not killed: break                                    # finished before we could kill it
        kills += 1
        for ck in list_checkpoints(run / 'checkpoints'): load_checkpoint(ck)     # every checkpoint verifies and loads
        newest = max([int(c.name.split('_')[1]) for c in list_checkpoints(run / 'checkpoints')] + [0])
        if last_step is not None: lost.append(last_step - newest)
    print(f"crash test: {kills} kills, steps lost per kill {lost}")
    assert kills >= 10, f'only {kills} kills happened'
    assert max(lost) <= CKPT, lost                              # at most one checkpoint interval of work lost
    p = launch(run); out = p.communicate(timeout=600)[0]
    assert p.returncode == 0, out[-3000:]
    with RunStore(run / 'store.sqlite') as st:
        steps = st.scalars()['step'].values.tolist()
    assert steps == list(range(1, STEPS + 1))                   # every step once: no duplicates, no gaps
    ref = reference_run[0]                                      # the same command, never interrupted
    a = load_checkpoint(list_checkpoints(run / 'checkpoints')[0]); b = load_checkpoint(list_checkpoints(ref / 'checkpoints')[0])
    assert a['step'] == b['step'] == STEPS
    for k in a['model']: assert torch.equal(a['model'][k], b['model'][k]), k
    for k in a['ema']: assert torch.equal(a['ema'][k], b['ema'][k]), k
