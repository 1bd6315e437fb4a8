"""Training throughput of fastdit_lab's DiT beside diffusers' DiTTransformer2DModel and the official DiT layout, and
the same process's GEMM rate as the yardstick.

Every arm runs the same training step (forward, MSE, backward, AdamW, EMA update) on the same batch of latents, at
the same precision, in one process: fastdit_lab's DiT, diffusers' `DiTTransformer2DModel` and the network of
facebookresearch/DiT's models.py (rebuilt in `official_dit.py`), each eager and compiled (ours per block, as the
trainer compiles; the others whole, their best), plus a 2048² GEMM in the same dtype (8192² on a GPU). Each arm is
warmed up until a step stops faulting in fresh pages (`common.warm_up`; the pages each timed step still faults in are
recorded), then the arms are measured in rounds whose order rotates, and each arm's median over the rounds is
reported, because this machine is shared; a ratio is the quotient of two medians of one run. The load average is
recorded before and after.

    taskset -c 1 python bench/throughput.py --batch 8 32 --threads 1               # the CPU ratios (fp32)
    python bench/throughput.py --models DiT-XL/2 --batch 64 --precision bf16 --no-official   # one GPU
"""
import argparse, copy, os, statistics, sys, time
from pathlib import Path
import torch
import torch.nn.functional as F
sys.path.insert(0, str(Path(__file__).parent))
from common import minor_faults, timed, warm_up, write_result
from official_dit import OfficialDiT, same_layout
from fastdit_lab.models.dit import DIT_SIZES, make_model
from fastdit_lab.models.flops import model_flops
from fastdit_lab.train.ema import ema_update
from fastdit_lab.train.defaults import PEAK_TFLOPS
from fastdit_lab.train.trainer import fused_adamw_supported

def size_of(name):
    size, patch = name.split('-')[1].split('/')
    depth, width, heads = DIT_SIZES[size]
    return dict(depth=depth, hidden_size=width, num_heads=heads, patch_size=int(patch))

def build(impl, name, latent=32, channels=4):
    "The network `impl` ('fastdit_lab', 'diffusers', 'official') at size `name`, 1000 classes, learned sigma."
    s = size_of(name)
    if impl == 'fastdit_lab': return make_model(name, input_size=latent, in_channels=channels)
    if impl == 'official': return OfficialDiT(input_size=latent, in_channels=channels, **s)
    from diffusers import DiTTransformer2DModel
    return DiTTransformer2DModel(num_attention_heads=s['num_heads'], attention_head_dim=s['hidden_size'] // s['num_heads'],
                                 in_channels=channels, out_channels=2 * channels, num_layers=s['depth'],
                                 sample_size=latent, patch_size=s['patch_size'])

def blocks_of(model, impl) -> torch.nn.ModuleList:
    "The repeated transformer blocks of `model` (diffusers: `transformer_blocks`; ours and the official layout: `blocks`)."
    return model.transformer_blocks if impl == 'diffusers' else model.blocks

def make_step(model, impl, compiled, batch, device, dtype, per_block:bool=False, **compile_kw):
    """A closure running one training step of `model` on a fixed random batch (`compile_kw`: torch.compile options).
    Compiled, ours compiles per block (as the trainer does); a peer compiles whole, or per block with `per_block`
    (regional compilation, as diffusers' `compile_repeated_blocks` does: one block's compile serves all of them)."""
    model = model.to(device).train()
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused_adamw_supported(device))
    fwd = model
    if compiled and impl == 'fastdit_lab': model.compile_blocks(**compile_kw)
    elif compiled and per_block:
        for block in blocks_of(model, impl): block.compile(**compile_kw)
    elif compiled: fwd = torch.compile(model, **compile_kw)
    x = torch.randn(batch, 4, 32, 32, device=device); y = torch.randint(0, 1000, (batch,), device=device)
    t = torch.randint(0, 1000, (batch,), device=device); target = torch.randn(batch, 8, 32, 32, device=device)
    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            out = fwd(x, timestep=t, class_labels=y).sample if impl == 'diffusers' else fwd(x, t.float(), y)
            loss = F.mse_loss(out.float(), target)
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True); ema_update(ema, model, 0.9999)
    return step

def gemm(device, dtype, n:int|None=None):
    """A closure multiplying two n×n matrices, and the FLOPs of one call, called once already (a GPU creates its BLAS
    handle and workspace in the first). n: 2048 on a CPU; 8192 on a GPU, where a 2048² product takes about as long as
    the synchronisation around its timing."""
    n = n or (8192 if torch.device(device).type == 'cuda' else 2048)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    fn = lambda: torch.mm(a, b)
    fn()
    return fn, 2 * n ** 3

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--models', nargs='+', default=['DiT-S/2'])
    p.add_argument('--batch', nargs='+', type=int, default=[8])
    p.add_argument('--precision', choices=['fp32', 'bf16'], default='fp32')
    p.add_argument('--steps', type=int, default=2, help='timed steps per arm and round')
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s own)')
    p.add_argument('--modes', nargs='+', default=['eager', 'compiled'], choices=['eager', 'compiled'])
    p.add_argument('--no-peer', action='store_true', help="leave out diffusers' DiT")
    p.add_argument('--no-official', action='store_true', help='leave out the official layout')
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    dtype = torch.bfloat16 if a.precision == 'bf16' else torch.float32
    if device.type == 'cuda': torch.backends.cuda.matmul.allow_tf32 = True; torch.backends.cudnn.allow_tf32 = True
    peak = next((v * 1e12 for k, v in PEAK_TFLOPS.items() if device.type == 'cuda' and k in torch.cuda.get_device_name(0)), None)
    impls = ['fastdit_lab'] + ['diffusers'] * (not a.no_peer) + ['official'] * (not a.no_official)
    load_before, results = os.getloadavg(), []
    mm, mm_flops = gemm(device, dtype)
    for name in a.models:
        flops = model_flops(make_model(name, input_size=32, in_channels=4))['train_flops']
        check_model = build('official', name)
        assert same_layout(check_model, build('fastdit_lab', name)), 'the official rebuild lost the layout'
        del check_model
        for batch in a.batch:
            arms, compile_s, warm = {}, {}, {}
            for impl in impls:
                model = build(impl, name)
                for mode in a.modes:
                    key = f'{impl}/{mode}'
                    arms[key] = make_step(model if mode == 'eager' else copy.deepcopy(model), impl, mode == 'compiled',
                                          batch, device, dtype)
                    warm[key] = calls = warm_up(arms[key], device)
                    if mode == 'compiled': compile_s[key] = calls[0][0] - calls[-1][0]
                    print(f'{name} batch {batch} {key}: warm-up steps (s, fresh pages) ' +
                          ', '.join(f'({s:.1f}, {n})' for s, n in calls), flush=True)
            rates, pages, gemm_rates = {k: [] for k in arms}, {k: [] for k in arms}, []
            for r in range(a.rounds):
                order = list(arms)[r % len(arms):] + list(arms)[:r % len(arms)]
                gemm_rates.append(3 * mm_flops / timed(mm, 3, device))
                for k in order:
                    before = minor_faults()
                    rates[k].append(a.steps * batch / timed(arms[k], a.steps, device))
                    pages[k].append((minor_faults() - before) // a.steps)
            gemm_rate = statistics.median(gemm_rates)
            row = dict(model=name, batch=batch, train_flops_per_img=flops, gemm_flops_per_s=gemm_rates,
                       median_gemm_flops_per_s=gemm_rate, compile_s=compile_s, arms={})
            for k, v in rates.items():
                med = statistics.median(v)
                row['arms'][k] = dict(img_per_s=v, median_img_per_s=med, flops_per_s=med * flops,
                                      fraction_of_gemm=med * flops / gemm_rate, mfu=med * flops / peak if peak else None,
                                      warm_up_steps=warm[k], fresh_pages_per_timed_step=pages[k])
            med = {k: v['median_img_per_s'] for k, v in row['arms'].items()}
            # on a shared machine the load changes between rounds: the ratio within each round (arms measured
            # minutes apart at most) and its median are steadier than a quotient of medians taken over all rounds
            per_round = lambda a_, b_: [x / y for x, y in zip(rates[a_], rates[b_])]
            row['fraction_of_gemm_per_round'] = {k: [r * flops / g for r, g in zip(v, gemm_rates)] for k, v in rates.items()}
            for mode in a.modes:
                ours = med[f'fastdit_lab/{mode}']
                for impl in impls[1:]:
                    row[f'ours_over_{impl}/{mode}'] = ours / med[f'{impl}/{mode}']
                    row[f'ours_over_{impl}/{mode}/per_round'] = r_ = per_round(f'fastdit_lab/{mode}', f'{impl}/{mode}')
                    row[f'ours_over_{impl}/{mode}/median_per_round'] = statistics.median(r_)
                    # the most any implementation of the same network could gain over this one: its step at the GEMM rate
                    row[f'ceiling_over_{impl}/{mode}'] = 1 / row['arms'][f'{impl}/{mode}']['fraction_of_gemm']
            if len(a.modes) == 2:
                for impl in impls: row[f'compile_speedup/{impl}/median_per_round'] = statistics.median(
                    per_round(f'{impl}/compiled', f'{impl}/eager'))
            if len(a.modes) == 2:
                for impl in impls: row[f'compile_speedup/{impl}'] = med[f'{impl}/compiled'] / med[f'{impl}/eager']
            results.append(row)
            print(f'{name} batch {batch}: GEMM {gemm_rate / 1e9:.1f} GFLOP/s; ' + '; '.join(
                f"{k} {v['median_img_per_s']:.2f} img/s ({v['fraction_of_gemm'] * 100:.0f} % of GEMM)"
                for k, v in row['arms'].items()), flush=True)
            print('  ' + ', '.join(f'{k} {v:.2f}' for k, v in row.items()
                                   if k.startswith(('ours_over', 'ceiling_over', 'compile_speedup')) and not k.endswith('per_round')))
            del arms
            if device.type == 'cuda': torch.cuda.empty_cache()
    settings = dict(vars(a), device=str(device), torch_threads=torch.get_num_threads(), peak_flops=peak,
                    cpu_affinity=sorted(os.sched_getaffinity(0)), latent='32x32x4', step='fwd+mse+bwd+AdamW+EMA',
                    gemm=('8192' if device.type == 'cuda' else '2048') + '² mm, same dtype', adamw_fused=fused_adamw_supported(device))
    print('wrote', write_result('throughput', settings, results, load_average_before=load_before,
                                load_average_after=os.getloadavg()))

if __name__ == '__main__': main()
