"""Stacked methods against their parts and the dense baseline: does FasterDiT + TREAD beat FasterDiT, TREAD and SiT?

Arms (DiT-T/4, `--depth` blocks deep; TREAD routes `--route START END` at ratio 0.5): dense SiT, TREAD (its EDM
recipe), FasterDiT (flow, logit-normal, direction loss, data std 1), the `fasterdit-tread` combination, and SiT with
TREAD's routing (the routing without the change of process). Each arm and seed trains from scratch, then scores the
proxy FID and class accuracy of its samples (`bench/race.py`).

An equal wall clock, fixed in steps: `--time-steps N` first times every arm side by side (`--time-steps` steady steps
each, after a warm-up, in one process), then gives each arm the steps that the dense arm's `--steps` take it, so the
race itself does not depend on what else the machine runs. `--arm-steps` gives them by hand instead (e.g. to split
the seeds over two processes with the same budget). The JSON records the timing and every arm's training seconds.

    python bench/stack_race.py --data fashion-mnist --data-dir ../shared/data/fashion-mnist --depth 6 --route 1 3 \\
        --steps 600 --time-steps 30 --n 1000 --seeds 0 1 --threads 1
"""
import tempfile, time
from race import arm_config, deeper, race, race_parser          # bench/ is on the path of a script run from it
from fastdit_lab.train.trainer import Trainer

def arms_of(a) -> list:
    margs = deeper(a)
    route = {'plan': {'name': 'tread', 'ratio': 0.5, 'start': a.route[0], 'end': a.route[1]}}
    return [('dense (SiT)', 'sit', margs),
            (f'TREAD 0.5, {a.route[0]}→{a.route[1]} (EDM)', 'tread', {**margs, **route}),
            ('FasterDiT', 'fasterdit', margs),
            ('FasterDiT + TREAD', 'fasterdit-tread', {**margs, **route}),
            (f'SiT + TREAD 0.5, {a.route[0]}→{a.route[1]}', 'sit', {**margs, **route})]     # TREAD's routing on the flow

def seconds_per_step(a, arms:list) -> dict:
    "Steady-state training seconds per step of each arm: (time of warm-up + n steps − time of warm-up) / n, side by side."
    out = {}
    for label, recipe, over in arms:
        t = []
        for steps in (10, 10 + a.time_steps):
            with tempfile.TemporaryDirectory() as tmp:
                cfg = arm_config(a, recipe, over, 0, tmp, steps=steps, time_budget_s=None)
                t.append(Trainer(cfg, quiet=True).fit().train_seconds)
        out[label] = (t[1] - t[0]) / a.time_steps
        print(f'{label:28s} {out[label]:.3f} s/step', flush=True)
    return out

if __name__ == '__main__':
    p = race_parser(__doc__, 'fashion-mnist', 120.0, depth=8)
    p.add_argument('--route', type=int, nargs=2, default=[2, -4], metavar=('START', 'END'), help="TREAD's route (blocks, inclusive)")
    p.add_argument('--time-steps', type=int, default=None, help='time each arm over this many steps, then race at an equal wall clock')
    p.add_argument('--arm-steps', type=int, nargs='+', default=None, help="each arm's fixed steps (one per arm, in the arms' order)")
    a = p.parse_args()
    if a.threads:
        import torch; torch.set_num_threads(a.threads)
    arms, extra = arms_of(a), {}
    if a.time_steps:
        t0 = time.time(); sps = seconds_per_step(a, arms)
        dense = sps[arms[0][0]]
        a.arm_steps = [round(a.steps * dense / sps[label]) for label, *_ in arms]
        extra['timing'] = dict(seconds_per_step=sps, time_steps=a.time_steps, seconds=time.time() - t0,
                               arm_steps=dict(zip(sps, a.arm_steps)))
        print('--arm-steps', *a.arm_steps, flush=True)                 # for a process racing the other seeds
    if a.arm_steps:
        if len(a.arm_steps) != len(arms): p.error(f'--arm-steps needs {len(arms)} numbers, one per arm, got {len(a.arm_steps)}')
        arms = [(label, recipe, {**over, 'steps': n}) for (label, recipe, over), n in zip(arms, a.arm_steps)]
    race('stack_race', arms, a, extra=extra)
