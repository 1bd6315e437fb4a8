"""Training throughput (img/s) and MFU of fastdit_lab's DiT, side by side with diffusers' DiTTransformer2DModel.

Both networks run the same training step (forward, MSE, backward, AdamW, EMA update) on the same batch of latents
at the same precision, in the same process. Measurements are interleaved in rounds (ours, peer, peer, ours, ...) and
the median of the rounds is reported, because these machines are noisy; the ratio is ours / peer.

    python bench/throughput.py --models DiT-S/2 --batch 8 --precision fp32              # CPU
    python bench/throughput.py --models DiT-XL/2 --batch 256 --precision bf16 --compile  # one GPU
"""
import argparse, copy, math, statistics, sys
from pathlib import Path
import torch
import torch.nn.functional as F
sys.path.insert(0, str(Path(__file__).parent))
from common import timed, write_result
from fastdit_lab.models.dit import make_model
from fastdit_lab.models.flops import model_flops
from fastdit_lab.train.ema import ema_update
from fastdit_lab.train.trainer import PEAK_TFLOPS

def peer_model(name, latent=32, channels=4):
    "diffusers' DiT with the same depth, width, heads and patch as our `name`."
    from diffusers import DiTTransformer2DModel
    from fastdit_lab.models.dit import DIT_SIZES
    size, patch = name[4:].split('/')
    depth, width, heads = DIT_SIZES[size]
    return DiTTransformer2DModel(num_attention_heads=heads, attention_head_dim=width // heads, in_channels=channels,
                                 out_channels=2 * channels, num_layers=depth, sample_size=latent, patch_size=int(patch))

def make_step(model, impl, batch, device, dtype, compile_):
    "A closure running one training step of `model` on a fixed random batch."
    model = model.to(device).train()
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == 'cuda')
    fwd = torch.compile(model) if compile_ else model
    x = torch.randn(batch, 4, 32, 32, device=device); y = torch.randint(0, 1000, (batch,), device=device)
    t = torch.randint(0, 1000, (batch,), device=device); target = torch.randn(batch, 8, 32, 32, device=device)
    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            out = fwd(x, t.float(), y) if impl == 'fastdit_lab' else fwd(x, timestep=t, class_labels=y).sample
            loss = F.mse_loss(out.float(), target)
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True); ema_update(ema, model, 0.9999)
    return step

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--models', nargs='+', default=['DiT-S/2'])
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--precision', choices=['fp32', 'bf16'], default='fp32')
    p.add_argument('--steps', type=int, default=5, help='timed steps per round')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--compile', action='store_true')
    p.add_argument('--no-peer', action='store_true', help='measure fastdit_lab only')
    a = p.parse_args()
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    dtype = torch.bfloat16 if a.precision == 'bf16' else torch.float32
    if device.type == 'cuda': torch.backends.cuda.matmul.allow_tf32 = True; torch.backends.cudnn.allow_tf32 = True
    peak = next((v * 1e12 for k, v in PEAK_TFLOPS.items() if device.type == 'cuda' and k in torch.cuda.get_device_name(0)), None)
    results = []
    for name in a.models:
        ours = make_model(name)
        flops = model_flops(ours)['train_flops']
        impls = {'fastdit_lab': ours} if a.no_peer else {'fastdit_lab': ours, 'diffusers': peer_model(name)}
        steps = {k: make_step(m, k, a.batch, device, dtype, a.compile) for k, m in impls.items()}
        for k, s in steps.items(): timed(s, a.warmup, device)
        rates = {k: [] for k in steps}
        for r in range(a.rounds):
            for k in (list(steps) if r % 2 == 0 else list(steps)[::-1]):
                rates[k].append(a.steps * a.batch / timed(steps[k], a.steps, device))
        row = dict(model=name, flops_per_img=flops)
        for k, v in rates.items():
            med = statistics.median(v)
            row[k] = dict(img_per_s=v, median_img_per_s=med, mfu=med * flops / peak if peak else None,
                          params=sum(p.numel() for p in impls[k].parameters()))
        if 'diffusers' in row: row['ratio_ours_over_peer'] = row['fastdit_lab']['median_img_per_s'] / row['diffusers']['median_img_per_s']
        results.append(row)
        msg = f"{name}: ours {row['fastdit_lab']['median_img_per_s']:.2f} img/s"
        if row['fastdit_lab']['mfu'] is not None: msg += f" (MFU {row['fastdit_lab']['mfu'] * 100:.1f}%)"
        if 'diffusers' in row: msg += f", diffusers {row['diffusers']['median_img_per_s']:.2f} img/s, ratio {row['ratio_ours_over_peer']:.2f}×"
        print(msg, flush=True)
        del steps, impls
        if device.type == 'cuda': torch.cuda.empty_cache()
    settings = dict(vars(a), device=str(device), peak_flops=peak, latent='32x32x4', step='fwd+mse+bwd+AdamW+EMA')
    print('wrote', write_result('throughput', settings, results))

if __name__ == '__main__': main()
