"""Sampling wall time of the dense DiT against DyDiT's sliced inference at FLOPs ratios λ = 0.5 and 0.7, one process.

The same weights run three ways: dense (no plan), and DyDiT with its gates set to reach each λ. The gates are set
directly — the first ⌈√λ·H⌉ heads and MLP groups on in every block and the token
routers' biases calibrated so that the per-sample FLOPs ratio r lands near λ — which measures what the sliced path
buys at a given ratio without training routers first (`bench/dydit_finetune.py` measures trained gates). Same sampler, steps, batch and precision for every arm; rounds are
interleaved and the median is reported, with the achieved ratio r measured during the timed sampling.

    python bench/dydit_speed.py --size S/2 --batch 8 --steps 10            # CPU
    python bench/dydit_speed.py --size XL/2 --batch 64 --steps 50          # one GPU
"""
import argparse, copy, math, statistics, sys
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent))
from common import timed, write_result
from fastdit_lab.diffusion.process import DDPM
from fastdit_lab.diffusion.objectives import EpsilonObjective
from fastdit_lab.diffusion.sampling import sample
from fastdit_lab.methods.dydit import DynamicPlan, block_costs
from fastdit_lab.models.dit import make_model

def set_gates(model, lam, x, t, y):
    "Heads and groups: the first ⌈a·H⌉ on (a = √λ); token-router biases calibrated so that r ≈ λ on the batch (x, t, y)."
    H, D, N = model.num_heads, model.config['hidden_size'], model.num_tokens
    k = max(1, math.ceil(math.sqrt(lam) * H))
    fa, fm = block_costs(N, D)
    s = min(1.0, (lam * (fa + fm) - k / H * fa) / (k / H * fm))        # token fraction that makes r = λ
    for r in model.routers:
        for lin in (r.head, r.mlp):
            torch.nn.init.zeros_(lin.weight); lin.bias.data.copy_(torch.tensor([1.0 if i + 1 < k else -1.0 for i in range(H - 1)]))
    logits = {}
    hooks = [r.token.register_forward_hook(lambda mod, inp, out, i=i: logits.__setitem__(i, out)) for i, r in enumerate(model.routers)]
    for _ in range(3):                                                  # later blocks see what earlier ones passed on
        with torch.no_grad(): model(x, t, y, plan=DynamicPlan(sliced=False))
        for i, r in enumerate(model.routers):
            r.token[2].bias.data -= torch.quantile(logits[i].flatten().float(), 1 - s) if s < 1 else -1e3
    for h in hooks: h.remove()
    return dict(heads_on=k, token_fraction_target=s)

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--size', default='S/2'); p.add_argument('--batch', type=int, default=8)
    p.add_argument('--steps', type=int, default=10, help='sampling steps (DDIM)'); p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--precision', choices=['fp32', 'bf16'], default='fp32')
    p.add_argument('--lams', type=float, nargs='+', default=[0.5, 0.7])
    a = p.parse_args()
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    dtype = torch.bfloat16 if a.precision == 'bf16' else torch.float32
    torch.manual_seed(0)
    base = make_model(f'DyDiT-{a.size}').to(device).eval()
    for n, prm in base.named_parameters():                              # stand-in trained weights: adaLN-Zero would make blocks identities
        if not n.startswith('routers'): prm.data.normal_(0, 0.02)
    obj = EpsilonObjective(DDPM())
    shape = (a.batch, 4, 32, 32); y = torch.randint(0, 1000, (a.batch,), device=device)
    x_cal, t_cal = torch.randn(shape, device=device), torch.full((a.batch,), 500., device=device)
    arms, info = {'dense': (base, None)}, {}
    for lam in a.lams:
        m = copy.deepcopy(base); info[lam] = set_gates(m, lam, x_cal, t_cal, y)
        arms[f'dydit-{lam}'] = (m, DynamicPlan())
    ratios = {k: [] for k in arms}
    def run(k):
        m, plan = arms[k]
        if plan is not None:        # record the achieved FLOPs ratio of every network call
            orig = plan.run
            def rec(model, x, c, aux, orig=orig):
                out = orig(model, x, c, aux); ratios[k].append(aux.metrics['plan/flops_ratio'].detach().mean()); return out
            plan.run = rec
        g = torch.Generator(device=device).manual_seed(0)
        def go():
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32), torch.no_grad():
                sample(m, obj, shape, y=y, method='ddim', steps=a.steps, device=device, generator=g, plan=plan)
        secs = timed(go, 1, device)
        if plan is not None: plan.run = orig
        return secs
    for k in arms: run(k)                                               # warm-up
    times = {k: [] for k in arms}
    for r in range(a.rounds):
        for k in (list(arms) if r % 2 == 0 else list(arms)[::-1]): times[k].append(run(k))
    med = {k: statistics.median(v) for k, v in times.items()}
    res = {k: dict(seconds=times[k], median_seconds=med[k], speedup_vs_dense=med['dense'] / med[k],
                   achieved_flops_ratio=statistics.mean(float(r) for r in ratios[k]) if ratios[k] else 1.0) for k in arms}
    for k, v in res.items():
        print(f"{k:10s} {v['median_seconds']:7.2f} s   ×{v['speedup_vs_dense']:.2f} vs dense   block-FLOPs ratio r = {v['achieved_flops_ratio']:.3f}")
    print('wrote', write_result('dydit_speed', dict(vars(a), device=str(device), gates='synthetic', calibration=info), res))

if __name__ == '__main__': main()
