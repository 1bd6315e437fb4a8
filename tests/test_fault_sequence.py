"""A seeded random sequence of hostile events against one run, checked after each event and at the end.

The events: SIGKILL at a random moment (in start-up or resume, in a step, in a checkpoint write), SIGTERM (a
pre-emption), a damaged checkpoint (a flipped byte in one of its files, its manifest deleted, a file cut short),
config.json deleted, the run's command with another model; and, when the run refuses because no checkpoint is good,
`--restart`. After every event the store holds each step at most once and every row is on the uninterrupted run's
trajectory (nothing mixed in), every checkpoint the trainer wrote verifies, once a run has resumed every checkpoint
left in the rotation is good (the damaged ones are set aside in checkpoints/bad/), the newest good checkpoint never
goes back except where a checkpoint was damaged, and a kill loses at most one checkpoint interval. At the end the run
reaches its last step bit-identical to the same command run without interruption: every damage here leaves the
trainer a way back (an older checkpoint or an explicit restart), and replaying from there is exact.

The runs are forked from a server process that has imported the package once (multiprocessing's forkserver), so an
event costs its training steps and not an interpreter start."""
import hashlib, multiprocessing, os, random, re, signal, sys, time
from pathlib import Path
import numpy as np
import pytest
import torch
from fastdit_lab.train.checkpoint import list_checkpoints, load_checkpoint
from fastdit_lab.train.store import RunStore

pytestmark = pytest.mark.slow

STEPS, CKPT, EVENTS, SEED = 60, 4, 24, 17
ARGS = ['train', '--recipe', 'sit', '--model', 'DiT-T/4', '--image-size', 8, '--batch-size', 4, '--steps', STEPS,
        '--log-every', 1, '--ckpt-every', CKPT, '--sample-n', 4, '--sample-steps', 1, '--hflip']

def _fastdit(argv:list, log:str):
    "In the forked child: `fastdit *argv`, its stdout and stderr going to the file `log`."
    fd = os.open(log, os.O_WRONLY | os.O_APPEND); os.dup2(fd, 1); os.dup2(fd, 2); os.close(fd)
    sys.stdout = open(1, 'w', buffering=1, closefd=False); sys.stderr = open(2, 'w', buffering=1, closefd=False)
    from fastdit_lab.cli import main
    main([str(a) for a in argv])

class Launcher:
    "Starts `fastdit` commands as processes forked from one that has the package imported."
    def __init__(self, folder:Path):
        self.ctx, self.folder, self.n = multiprocessing.get_context('forkserver'), folder, 0
        # what a training command imports on its way (torch._dynamo alone takes seconds), imported once
        self.ctx.set_forkserver_preload(['fastdit_lab.cli', 'fastdit_lab.train.trainer', 'torch._dynamo',
                                         'accelerate.utils', 'PIL.Image', 'PIL.PngImagePlugin'])
    def start(self, *argv):
        self.n += 1; log = self.folder / f'log-{self.n:03d}.txt'; log.touch()   # a kill may come before the child opens it
        p = self.ctx.Process(target=_fastdit, args=([str(a) for a in argv], str(log))); p.start()
        return p, log

def steps_in(log:Path) -> list[int]:
    return [int(s) for s in re.findall(r'step (\d{7})/', log.read_text())] if log.exists() else []

def wait_steps(p, log:Path, n:int, on:int|None=None, timeout:float=300):
    "Wait until the process has printed `n` step lines (or a step line for a multiple of `on`), or has ended."
    deadline = time.monotonic() + timeout
    while p.is_alive() and time.monotonic() < deadline:
        s = steps_in(log)
        if len(s) >= n or (on and s and s[-1] % on == 0): return
        time.sleep(0.005)

def trajectory(run:Path) -> dict:
    "{metric: values} of the run's store that depend only on the training trajectory (no timings), and the steps."
    with RunStore(run / 'store.sqlite') as st: sc = st.scalars()
    names = [n for n in sc.data_vars if any(w in n for w in ('loss', 'mse', 'grad_norm'))]
    return dict(step=sc['step'].values.tolist(), **{n: sc[n].values for n in names})

def good_steps(ckdir:Path, damaged:dict) -> list[int]:
    "Steps of the checkpoints in rotation that verify, newest first; each one that is not ours to damage must."
    out = []
    for ck in list_checkpoints(ckdir):
        try: load_checkpoint(ck); out.append(int(ck.name[5:]))
        except Exception:
            assert damaged.get(ck.name) == os.stat(ck).st_ino, f'{ck} was written by the trainer and is not good'
    return out

def damage(run:Path, rng:random.Random, damaged:dict) -> str|None:
    "Damage one checkpoint in rotation (the newest most often): a flipped byte, a deleted manifest or a cut file."
    cks = list_checkpoints(run / 'checkpoints')
    if not cks: return None
    ck = cks[0] if rng.random() < 0.6 else rng.choice(cks)
    how = rng.choice(['flip', 'flip', 'manifest', 'cut'])
    name = rng.choice(['model.safetensors', 'ema.safetensors', 'state.pt'])
    if how == 'manifest': (ck / 'manifest.json').unlink(missing_ok=True)
    else:
        b = bytearray((ck / name).read_bytes())
        if how == 'flip': b[rng.randrange(len(b))] ^= 0xFF
        else: b = b[:len(b) // 2]
        (ck / name).write_bytes(bytes(b))
    damaged[ck.name] = os.stat(ck).st_ino
    return f'{how} {ck.name}' + ('' if how == 'manifest' else f'/{name}')

def snapshot(folder:Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob('*')) if p.is_file()}

def test_random_faults_never_lose_the_run(tmp_path):
    launch = Launcher(tmp_path)
    ref = tmp_path / 'reference'                                   # the same command, never interrupted
    p, log = launch.start(*ARGS, '--run-dir', ref); p.join(600)
    assert p.exitcode == 0, log.read_text()[-3000:]
    want = trajectory(ref)
    assert want['step'] == list(range(1, STEPS + 1)) and len(want) > 2

    t0 = time.monotonic()
    rng, run, damaged = random.Random(SEED), tmp_path / 'run', {}
    events, kill_lost, damage_lost, gone, restart = [], [], [], 0, False
    while len(events) < EVENTS:
        ckdir = run / 'checkpoints'
        before = good_steps(ckdir, damaged)
        kind = 'restart' if restart else rng.choices(['kill', 'term', 'damage', 'config', 'other-model'],
                                                     [0.45, 0.12, 0.25, 0.08, 0.10])[0]
        if kind == 'damage':
            what = damage(run, rng, damaged)
            if what is None: continue                              # nothing to damage yet
            after = good_steps(ckdir, damaged)
            damage_lost.append((before[:1] or [0])[0] - (after[:1] or [0])[0]); gone += 1
            events.append(what); continue
        if kind == 'config':
            if not (run / 'config.json').exists(): continue
            (run / 'config.json').unlink(); events.append('config.json deleted'); continue
        if kind == 'other-model':
            if not (run / 'config.json').exists() and not list_checkpoints(run / 'checkpoints'): continue   # no run yet
            was = snapshot(run)
            p, log = launch.start(*ARGS, '--model', 'DiT-T/2', '--run-dir', run); p.join(300)
            assert p.exitcode == 2, log.read_text()[-2000:]
            lines = log.read_text().strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith('fastdit: error:'), lines
            assert snapshot(run) == was, 'a refused command changed the run'
            events.append('command with another model: refused'); continue
        # a run of the command (or of --restart), SIGKILLed or SIGTERMed at a random moment
        p, log = launch.start(*ARGS, '--run-dir', run, *(['--restart'] if kind == 'restart' else []))
        mode = 'term' if kind == 'term' else rng.choice(['start-up', 'steps', 'steps', 'save'])
        if mode == 'start-up': time.sleep(rng.uniform(0.0, 0.8))  # import is done: config, data, model, resume
        elif mode == 'save': wait_steps(p, log, 8, on=CKPT); time.sleep(rng.uniform(0.0, 0.02))
        else: wait_steps(p, log, rng.randint(1, 7)); time.sleep(rng.uniform(0.0, 0.03))
        if p.is_alive(): os.kill(p.pid, signal.SIGTERM if kind == 'term' else signal.SIGKILL)
        p.join(300)
        assert not p.is_alive()
        text, seen = log.read_text(), steps_in(log)
        assert 'Traceback' not in text, text[-3000:]
        if p.exitcode == 2:                                        # refused: no good checkpoint is left
            assert 'no good checkpoint' in text and '--restart' in text, text[-2000:]
            restart = True; events.append(f'{kind}: refused, no good checkpoint'); continue
        restart = False
        after = good_steps(ckdir, damaged)
        if kind == 'restart':
            assert (run / 'archive').is_dir() or not before, 'a restart deleted the old run instead of archiving it'
        else:                                                      # the newest good checkpoint never goes back
            assert (after[:1] or [0])[0] >= (before[:1] or [0])[0], (before, after)
        if seen or p.exitcode in (0, 75):                          # it resumed: the damaged ones are set aside,
            for ck in list_checkpoints(ckdir): load_checkpoint(ck)  # the newest and every other one in the rotation
        if kind == 'term' and p.exitcode == 75:
            assert after[0] == seen[-1], (after, seen)             # pre-emption: its own checkpoint, nothing lost
        else: assert p.exitcode in (0, -signal.SIGKILL), (p.exitcode, text[-2000:])
        if seen:                                                   # a kill loses at most one checkpoint interval
            kill_lost.append(max(0, seen[-1] - (after[:1] or [0])[0]))
            assert kill_lost[-1] <= CKPT, f'{kind} at step {seen[-1]} lost {kill_lost[-1]} steps (newest good: {after[:1]})'
        print(f'{time.monotonic() - t0:6.1f} s  {kind} ({mode}) at step {seen[-1] if seen else "start-up"}: exit {p.exitcode}', flush=True)
        events.append(f'{kind} ({mode}) at step {seen[-1] if seen else "start-up"}: exit {p.exitcode}')
        if (run / 'store.sqlite').exists():                        # at most once each, all on the one trajectory
            got = trajectory(run)
            assert got['step'] == sorted(set(got['step'])), got['step']
            idx = [s - 1 for s in got['step']]
            for k, v in got.items():
                if k != 'step': assert np.array_equal(v, want[k][idx]), f'{k}: rows of another trajectory in the store'

    # then the command once more, to the end. Where the last events damaged every checkpoint left, it must refuse
    # (nothing to resume from) until --restart says to start over; the restart's replay is exact too.
    final = ['--restart'] if restart else []
    while True:
        p, log = launch.start(*ARGS, '--run-dir', run, *final); p.join(600)
        text = log.read_text()
        if p.exitcode == 2 and not final:
            assert not good_steps(run / 'checkpoints', damaged), f'refused with a good checkpoint left: {text[-2000:]}'
            assert 'no good checkpoint' in text and '--restart' in text, text[-2000:]
            events.append('final run: refused, no good checkpoint'); final = ['--restart']; continue
        assert p.exitcode == 0, text[-3000:]
        if not final: break
        final = []                                                 # after the restart, the plain command once more
    got = trajectory(run)
    assert got['step'] == list(range(1, STEPS + 1))                 # every step once: no duplicates, no gaps
    for k in want: assert np.array_equal(np.asarray(got[k]), np.asarray(want[k])), k
    a, b = (load_checkpoint(list_checkpoints(r / 'checkpoints')[0]) for r in (run, ref))
    assert a['step'] == b['step'] == STEPS
    for part in ('model', 'ema'):
        for k in b[part]: assert torch.equal(a[part][k], b[part][k]), (part, k)
    print(f'\nfault sequence (seed {SEED}): {len(events)} events survived; steps lost per kill: max '
          f'{max(kill_lost, default=0)} (of {len(kill_lost)} runs that trained); checkpoints damaged: {gone}, steps of '
          f'progress they took: max {max(damage_lost, default=0)}; good checkpoints the trainer lost: 0')
    for e in events: print('  ', e)
