"""Training throughput (img/s) of the token plans against the dense baseline: TREAD and MaskDiT vs DiT, one process.

Each method runs its real training step through the trainer's components (objective with its plan and loss terms,
backward, AdamW, EMA update) on the same batch of 32×32×4 latents (ImageNet-256 after the SD VAE) at the same
precision. Measurements are interleaved in rounds and the median is reported; ratios are method / dense, measured
side by side. The analytic FLOP ratio is reported beside the measured one.

    python bench/token_plans.py --size S/2 --batch 16 --precision fp32          # CPU
    python bench/token_plans.py --size XL/2 --batch 64 --precision bf16         # one GPU
"""
import argparse, statistics, sys
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent))
from common import recipe_step, timed, write_result
import fastdit_lab.all                  # every method registers its recipes, models, plans, samplers and losses

METHODS = {'dense': dict(recipe='edm', model='DiT-{}'), 'tread': dict(recipe='tread', model='DiT-{}'),
           'maskdit': dict(recipe='maskdit', model='MaskDiT-{}')}

def make_step(method, size, batch, device, dtype):
    "A closure running one training step of `method` on a fixed random batch, and the model's FLOPs per image."
    m = METHODS[method]
    return recipe_step(m['recipe'], m['model'].format(size), batch, device, dtype)

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--size', default='S/2', help='DiT size and patch, e.g. S/2, B/2, XL/2')
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--precision', choices=['fp32', 'bf16'], default='fp32')
    p.add_argument('--steps', type=int, default=4, help='timed steps per round')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--rounds', type=int, default=4)
    a = p.parse_args()
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    dtype = torch.bfloat16 if a.precision == 'bf16' else torch.float32
    if device.type == 'cuda': torch.backends.cuda.matmul.allow_tf32 = True; torch.backends.cudnn.allow_tf32 = True
    steps, flops = {}, {}
    for k in METHODS: steps[k], flops[k] = make_step(k, a.size, a.batch, device, dtype)
    for k, s in steps.items(): timed(s, a.warmup, device)
    rates = {k: [] for k in steps}
    for r in range(a.rounds):
        for k in (list(steps) if r % 2 == 0 else list(steps)[::-1]):
            rates[k].append(a.steps * a.batch / timed(steps[k], a.steps, device))
    med = {k: statistics.median(v) for k, v in rates.items()}
    results = {k: dict(img_per_s=rates[k], median_img_per_s=med[k], speedup_vs_dense=med[k] / med['dense'],
                       train_flops_per_img=flops[k], flop_ratio_vs_dense=flops[k] / flops['dense']) for k in steps}
    for k, r in results.items():
        print(f"{k:8s} {r['median_img_per_s']:8.1f} img/s   ×{r['speedup_vs_dense']:.2f} of dense   "
              f"(FLOPs {r['flop_ratio_vs_dense']:.2f} of dense)")
    path = write_result('token_plans', dict(size=a.size, batch=a.batch, precision=a.precision, steps=a.steps,
                                            rounds=a.rounds, device=str(device)), results)
    print(f'wrote {path}')

if __name__ == '__main__': main()
