"""Overhead of the per-timestep gradient-variance instrument (train.instrument.GradVarianceCallback).

Trains a recipe with the instrument measuring every `--every` steps and reports the instrument's time as a fraction
of training time, measured directly at `--every` and scaled to the default interval (500 steps): the cost of one
measurement does not depend on the interval. Writes JSON to bench/results/.

    python bench/grad_variance.py --recipe quickstart --steps 300 --every 100
"""
import argparse, sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from common import write_result
import fastdit_lab.all                  # every method registers its recipes, models, plans, samplers and losses
from fastdit_lab.train.config import resolve_config
from fastdit_lab.train.instrument import GradVarianceCallback, default_every
from fastdit_lab.train.trainer import Trainer

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--recipe', default='quickstart'); p.add_argument('--model', default=None)
    p.add_argument('--steps', type=int, default=300); p.add_argument('--every', type=int, default=100)
    p.add_argument('--n-bins', type=int, default=10); p.add_argument('--per-bin', type=int, default=8)
    p.add_argument('--default-every', type=int, default=None,
                   help="the interval to state the overhead at (default: the callback's own for a run of --steps)")
    a = p.parse_args()
    a.default_every = a.default_every or default_every(a.steps)
    over = dict(model=a.model) if a.model else {}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = resolve_config(a.recipe, **over, steps=a.steps, ckpt_every=10**9, sample_n=10, sample_steps=2, run_dir=f'{tmp}/run',
                             instrument={'name': 'grad_variance', 'every': a.every, 'n_bins': a.n_bins, 'per_bin': a.per_bin})
        tr = Trainer(cfg, quiet=True).fit()
        cb = next(c for c in tr.callbacks if isinstance(c, GradVarianceCallback))
        n_meas = tr.step // a.every
        per_meas = cb.seconds / max(n_meas, 1)
        step_s = tr.train_seconds / tr.step
        res = dict(model=cfg.model, batch=cfg.batch_size, image_size=cfg.image_size, steps=tr.step, measurements=n_meas,
                   seconds_per_measurement=per_meas, seconds_per_step=step_s,
                   overhead_measured=cb.seconds / tr.train_seconds,
                   overhead_at_default=per_meas / (a.default_every * step_s), default_every=a.default_every)
    print(f"{res['model']} batch {res['batch']}: one measurement {per_meas:.2f} s = {per_meas / step_s:.1f} training steps; "
          f"overhead {res['overhead_measured'] * 100:.1f}% at every={a.every}, "
          f"{res['overhead_at_default'] * 100:.2f}% at the default every={a.default_every}")
    res['methods'] = compare_methods(tr, a.per_bin)
    print(f"per-sample gradients of {a.per_bin} samples: vmap {res['methods']['vmap_s']:.2f} s, loop of one-sample backward "
          f"passes {res['methods']['loop_s']:.2f} s ({res['methods']['loop_over_vmap']:.2f}×), max |difference| {res['methods']['max_abs_diff']:.1e}")
    print('wrote', write_result('grad_variance', vars(a), res))

def compare_methods(tr, n:int) -> dict:
    "Time per-sample gradients by torch.func.vmap against a loop of one-sample backward passes, on the same samples."
    import time, torch
    from common import timed
    from fastdit_lab.train.instrument import per_sample_grads, trainable_params
    net, obj = tr.net.eval(), tr.objective
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(n, *tr.dataset.image_shape, generator=g); y = torch.randint(0, tr.dataset.num_classes, (n,), generator=g)
    t = tr.process.t_of_u(torch.rand(n, generator=g, dtype=torch.float64)); noise = torch.randn(x0.shape, generator=g)
    x0, y, t, noise = (v.to(tr.device) for v in (x0, y, t, noise))                # drawn on the CPU: the same on any device
    params = trainable_params(net)
    per_sample_grads(net, obj, x0, y, t, noise, params)                               # warm-up
    grads = []
    tv = timed(lambda: grads.append(per_sample_grads(net, obj, x0, y, t, noise, params)[0]), 1, tr.device)
    gv = grads[0]
    t0 = time.perf_counter(); diff = 0.0
    for i in range(n):
        net.zero_grad(); obj.loss(net, x0[i:i+1], y[i:i+1], t[i:i+1], noise[i:i+1])['loss'].sum().backward()
        diff = max(diff, max(float((p.grad - gv[k][i]).abs().max()) for k, p in net.named_parameters() if k in params))
    tl = time.perf_counter() - t0
    return dict(n=n, vmap_s=tv, loop_s=tl, loop_over_vmap=tl / tv, max_abs_diff=diff)

if __name__ == '__main__': main()
