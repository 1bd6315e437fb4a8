"""DyDiT end to end at small scale: train a dense DiT on a real dataset, fine-tune it as DyDiT to λ = 0.5 and 0.7, and
report proxy FID before/after, the achieved FLOPs ratio and the measured sampling speed-up of the sliced path.

The dense model and both fine-tunes use the DiT objective (DDPM, ε + learned variance), as DyDiT does. Fine-tunes
start from the dense run's EMA weights (`init_from`), run the `dydit` / `dydit-0.7` recipes with a short target
warm-up and a router learning rate `--router-lr-mult` times the model's (the reference fine-tunes for 150k+ steps at
one lr; a CPU budget of minutes cannot move the routers' initial biases otherwise), and are sampled with their
dynamic plan. The runs are fixed in steps (`--dense-steps`, `--ft-steps`) so that the FLOPs target's warm-up
(`--hold-steps`, `--warmup-steps`) finishes inside the fine-tune whatever the machine's speed; `--dense-budget` /
`--ft-budget` give seconds instead. `--control` adds the dense model trained on for the same steps at the same lr,
which separates what the extra training buys from what DyDiT costs. Speed: DDIM sampling of the same batch, dense vs
dynamic, rounds interleaved, median. Writes JSON to bench/results/.

    python bench/dydit_finetune.py --data fashion-mnist --data-dir ../shared/data/fashion-mnist --size T/4 \
        --dense-steps 300 --ft-steps 300 --warmup-steps 150 --control
"""
import argparse, statistics, sys, tempfile
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent))
from common import timed, write_result
from fastdit_lab.diffusion.sampling import sample
from fastdit_lab.eval import evaluate_fid
from fastdit_lab.models.flops import model_flops
from fastdit_lab.train.config import resolve_config
from fastdit_lab.train.store import RunStore
from fastdit_lab.train.trainer import Trainer

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', default='fashion-mnist'); p.add_argument('--data-dir', default=None)
    p.add_argument('--size', default='T/2'); p.add_argument('--image-size', type=int, default=None)
    p.add_argument('--dense-steps', type=int, default=None); p.add_argument('--ft-steps', type=int, default=None)
    p.add_argument('--dense-budget', type=float, default=300, help='seconds, when --dense-steps is not given')
    p.add_argument('--ft-budget', type=float, default=150, help='seconds, when --ft-steps is not given')
    p.add_argument('--hold-steps', type=int, default=20, help='fine-tune steps at target 1 before the anneal')
    p.add_argument('--warmup-steps', type=int, default=200, help='fine-tune steps over which the target anneals from 1 to λ')
    p.add_argument('--stage2-at', type=float, default=1 / 3,
                   help='fraction of the fine-tune after which the complete-model loss is dropped (stage 2)')
    p.add_argument('--stage2-lams', type=float, nargs='*', default=[0.5],
                   help='the targets that get stage 2 (the recipes: λ=0.5 does, λ=0.7 keeps stage 1 throughout)')
    p.add_argument('--control', action='store_true',
                   help='also continue the dense model for the fine-tune length at the fine-tune lr: the FID that the extra '
                        'training alone buys, to set the fine-tunes against')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads (pin with taskset to run beside other work)')
    p.add_argument('--batch', type=int, default=64); p.add_argument('--n', type=int, default=500)
    p.add_argument('--sample-steps', type=int, default=50, help='DDIM steps for FID and speed')
    p.add_argument('--lams', type=float, nargs='*', default=[0.5, 0.7], help='FLOPs targets to fine-tune to (none: dense and --control only)')
    p.add_argument('--router-lr-mult', type=float, default=100.0,
                   help='routers lr / model lr: a few hundred steps must move biases that start at 15 and 35')
    a = p.parse_args()
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if a.threads: torch.set_num_threads(a.threads)
    def length(steps, budget): return dict(steps=steps) if steps else dict(steps=10**9, time_budget_s=budget)
    common = dict(data=a.data, data_dir=a.data_dir, image_size=a.image_size, batch_size=a.batch,
                  ema_decay=0.999, ema_warmup=True, log_every=25, ckpt_every=10**9, sample_n=10, sample_steps=4,
                  sample_method='ddim', routing_every=0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        dense = Trainer(resolve_config('dit', model=f'DiT-{a.size}', lr=1e-3, warmup_steps=50, run_dir=f'{tmp}/dense',
                                       **length(a.dense_steps, a.dense_budget), **common), quiet=True).fit()
        def fid(tr, plan=None):
            return evaluate_fid(tr.ema.model, tr.objective, a.data, data_dir=a.data_dir, n=a.n, image_size=a.image_size,
                                method='ddim', steps=a.sample_steps, device=device, plan=plan)['fid']
        f0 = fid(dense)
        rows.append(dict(model='dense', steps=dense.step, train_seconds=dense.train_seconds, fid=f0, flops_ratio=1.0))
        print(f'dense: {dense.step} steps, proxy FID {f0:.2f}', flush=True)
        if a.control:
            ctl = Trainer(resolve_config('dit', model=f'DiT-{a.size}', lr=1e-4, init_from=f'{tmp}/dense', run_dir=f'{tmp}/control',
                                         **length(a.ft_steps, a.ft_budget), **common), quiet=True).fit()
            fc = fid(ctl)
            rows.append(dict(model='dense, continued', steps=ctl.step, train_seconds=ctl.train_seconds, fid=fc, flops_ratio=1.0))
            print(f'dense continued: {ctl.step} more steps at lr 1e-4, proxy FID {fc:.2f}', flush=True)
        for lam in a.lams:
            recipe = 'dydit' if lam == 0.5 else 'dydit-0.7'
            flops = {'name': 'flops', 'weight': 2.0, 'target': lam, 'hold_steps': a.hold_steps, 'warmup_steps': a.warmup_steps}
            over = dict(model=f'DyDiT-{a.size}', model_args={'router_lr_mult': a.router_lr_mult}, init_from=f'{tmp}/dense',
                        run_dir=f'{tmp}/dy{lam}', losses=[flops, {'name': 'complete_model'}], lr=1e-4,
                        **length(a.ft_steps, a.ft_budget), **common)
            stage2 = (round(a.stage2_at * a.ft_steps) if a.ft_steps else 100) if lam in a.stage2_lams else None
            over['stages'] = [{'at_step': stage2, 'losses': [flops]}] if stage2 is not None else []
            tr = Trainer(resolve_config(recipe, **over), quiet=True).fit()
            plan = tr.inference_plan
            with RunStore(Path(tr.run_dir) / 'store.sqlite') as st:     # the training gates' ratio, as logged
                sc = st.scalars()
                train_ratio = sc['plan/flops_ratio'].dropna('step')
            target_end = next(t for t in tr.objective.terms if t.name == 'flops').target_at(tr.step)
            f1 = fid(tr, plan)
            # speed and achieved ratio on one sampling batch: dense EMA of the dense run vs this run's dynamic EMA
            shape, y = (a.batch, *tr.dataset.image_shape), torch.arange(a.batch, device=device) % tr.dataset.num_classes
            ratios, macs = [], []
            orig = plan.run
            def rec(model, x, c, aux):
                out = orig(model, x, c, aux)
                ratios.append(float(aux.metrics['plan/flops_ratio'].mean())); macs.append(model_flops(model, plan, aux)["forward_macs"])
                return out
            def sampling_time(model, pl):
                g = torch.Generator(device=device).manual_seed(0)
                def go():
                    with torch.no_grad():
                        sample(model, tr.objective, shape, y=y, method='ddim', steps=a.sample_steps, device=device,
                               generator=g, plan=pl)
                return timed(go, 1, device)
            plan.run = rec; sampling_time(tr.ema.model, plan); plan.run = orig; sampling_time(dense.ema.model, None)
            td, ty = [], []
            for r in range(3):
                for which in ((0, 1) if r % 2 == 0 else (1, 0)):
                    (td if which == 0 else ty).append(sampling_time(dense.ema.model, None) if which == 0
                                                      else sampling_time(tr.ema.model, plan))
            dense_macs = model_flops(dense.ema.model)['forward_macs']
            row = dict(model=f'DyDiT λ={lam}', recipe=recipe, stage2_at=stage2, steps=tr.step, train_seconds=tr.train_seconds, fid=f1,
                       target_at_end=target_end, train_flops_ratio_last=float(train_ratio.values[-1]),
                       train_flops_ratio_trace={int(k): round(float(v), 4) for k, v in zip(train_ratio.step.values, train_ratio.values)},
                       flops_ratio=statistics.mean(ratios), forward_macs_ratio=statistics.mean(macs) / dense_macs,
                       dense_sample_seconds=statistics.median(td), dydit_sample_seconds=statistics.median(ty),
                       speedup=statistics.median(td) / statistics.median(ty))
            rows.append(row)
            print(f"λ={lam}: {tr.step} fine-tune steps, proxy FID {f1:.2f} (dense {f0:.2f}), block-FLOPs ratio "
                  f"{row['flops_ratio']:.3f}, forward MACs {row['forward_macs_ratio']:.3f} of dense, speed-up ×{row['speedup']:.2f}", flush=True)
    print('wrote', write_result('dydit_finetune', dict(vars(a), device=str(device)), rows))

if __name__ == '__main__': main()
