"""Kim et al.'s adaptive timestep sampler, faithful against adapted, on one short run each from the same seed.

`faithful=True` rewards the decrease of the bound's term L_t (VLB-KL) and sweeps all T steps of the chain; the default
adaptation rewards the decrease of the training loss on a strided sweep of `--sweep` levels. Both train the DiT recipe
(DDPM, ε + learned variance) for the same fixed steps on the same batches. Per mode and seed: the cost of a policy
update (forward samples, wall seconds of the measurement), the run's training FLOP ratio against the dense model
(`sys/flop_ratio_train`, the measurement included), the timesteps each selects, and the learned densities over the
noise level: their total-variation distance from each other after every update and from uniform. Writes JSON to
bench/results/.

    python bench/adaptive_modes.py --data fashion-mnist --data-dir ../shared/data/fashion-mnist --image-size 16 \\
        --steps 200 --every 20 --seeds 0 1 --threads 1
"""
import argparse, tempfile, time
import numpy as np
import torch
from common import write_result
import fastdit_lab.all                  # every method registers its recipes, samplers and callbacks
from fastdit_lab.methods.adaptive import UpdateEffectCallback
from fastdit_lab.train.config import resolve_config
from fastdit_lab.train.store import RunStore
from fastdit_lab.train.trainer import Trainer

def tv(p:np.ndarray, q:np.ndarray) -> float:
    "Total-variation distance between two densities given on the same equal bins (each normalised to mass 1)."
    p, q = p / p.sum(), q / q.sum()
    return 0.5 * float(np.abs(p - q).sum())

def timed_callback(tr) -> dict:
    "Wrap the sampler's measurement callback so that the seconds it spends (before and after each update) add up."
    cb, secs = next(c for c in tr.callbacks if isinstance(c, UpdateEffectCallback)), dict(s=0.0)
    for name in ('before_optimizer_step', 'after_optimizer_step'):
        fn = getattr(cb, name)
        def wrapped(t_, fn=fn):
            t0 = time.perf_counter(); fn(t_); secs['s'] += time.perf_counter() - t0
        setattr(cb, name, wrapped)
    return secs

def run(a, seed:int, faithful:bool, run_dir:str) -> dict:
    cfg = resolve_config('dit', model=a.model, data=a.data, data_dir=a.data_dir, image_size=a.image_size, steps=a.steps,
                         batch_size=a.batch, lr=a.lr, seed=seed, log_every=a.steps, ckpt_every=10**9, sample_n=10,
                         sample_steps=2, run_dir=run_dir,
                         process={'name': 'ddpm', 'schedule': 'linear', 'T': a.T},
                         sampler={'name': 'adaptive', 'policy': 'beta', 'every': a.every, 'n_select': a.n_select,
                                  'sweep': a.sweep, 'faithful': faithful})
    tr = Trainer(cfg, quiet=True)
    secs = timed_callback(tr)
    tr.fit()
    s = tr.sampler
    with RunStore(run_dir) as st:
        pol = st.tbins('sampler/policy')
        ratio = float(st.scalars(['sys/flop_ratio_train'])['sys/flop_ratio_train'].dropna('step').values[0])
    updates = len(pol.step)
    sel_u = [float(s.sweep_u[k]) for k in s.selected]
    return dict(mode='faithful' if faithful else 'adapted', seed=seed, updates=updates, sweep=s.sweep,
                forward_samples_per_update=s.forward_samples / updates,
                measurement_seconds_per_update=secs['s'] / updates, train_seconds=tr.train_seconds,
                flop_ratio_train=ratio, selected_u=sel_u,
                selected_t=[int(tr.process.t_of_u(torch.tensor([u], dtype=torch.float64)).item()) for u in sel_u],
                policy_steps=pol.step.values.tolist(), policy=pol.values.tolist(),
                final_density_mean_u=float((pol.values[-1] * (np.arange(50) + 0.5) / 50).sum() / pol.values[-1].sum()),
                tv_from_uniform=tv(pol.values[-1], np.ones(50)))

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', default='fashion-mnist'); p.add_argument('--data-dir', default=None)
    p.add_argument('--image-size', type=int, default=16); p.add_argument('--model', default='DiT-T/4')
    p.add_argument('--steps', type=int, default=200); p.add_argument('--every', type=int, default=20)
    p.add_argument('--batch', type=int, default=32); p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--T', type=int, default=1000); p.add_argument('--sweep', type=int, default=50)
    p.add_argument('--n-select', type=int, default=3); p.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    p.add_argument('--threads', type=int, default=None)
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    rows, pairs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in a.seeds:
            fa, ad = (run(a, seed, f, f'{tmp}/{seed}-{f}') for f in (True, False))
            rows += [fa, ad]
            check = fa['policy_steps'] == ad['policy_steps']
            pairs.append(dict(seed=seed, same_update_steps=check,
                              tv_per_update=[tv(np.array(x), np.array(y)) for x, y in zip(fa['policy'], ad['policy'])]))
            for r in (fa, ad):
                print(f"seed {seed} {r['mode']:>8}: {r['forward_samples_per_update']:.0f} forward samples and "
                      f"{r['measurement_seconds_per_update']:.2f} s per update ({r['updates']} updates, "
                      f"{r['train_seconds']:.1f} s training), FLOP ratio {r['flop_ratio_train']:.3f}, "
                      f"selects t = {r['selected_t']}, TV from uniform {r['tv_from_uniform']:.3f}")
            print(f"seed {seed} TV(faithful, adapted) per update: {[round(v, 3) for v in pairs[-1]['tv_per_update']]}")
    for r in rows: r['final_density'] = [round(v, 4) for v in r.pop('policy')[-1]]   # over u, 50 equal bins
    path = write_result('adaptive_modes', vars(a), dict(runs=rows, pairs=pairs))
    print(path)

if __name__ == '__main__': main()
