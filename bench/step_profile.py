"""Where one training step's time goes, by kind of work, for fastdit_lab's DiT and diffusers' DiTTransformer2DModel:
matrix products (and the patch convolution), attention, the optimizer and EMA, and everything else (inductor's fused
kernels when compiled, aten's elementwise and normalisation kernels when eager).

It explains `throughput.py`'s ratios. When both implementations spend most of a step in the same matrix products at
the GEMM rate of the same process, no implementation of that network can be much faster than the other; the
headroom that is left is the rest of the step, which this benchmark measures. The step is `throughput.make_step`'s
(forward, MSE, backward, AdamW, EMA), profiled with `torch.profiler` after `common.warm_up`'s steps; the FLOPs of the
matrix products are the profiler's own count from their shapes.

    taskset -c 1 python bench/step_profile.py --batch 16 --threads 1
"""
import argparse, os, sys
from collections import defaultdict
from pathlib import Path
import torch
from torch.profiler import ProfilerActivity, profile
sys.path.insert(0, str(Path(__file__).parent))
from common import timed, warm_up, write_result
from throughput import build, gemm, make_step

GEMM_OPS = ('aten::mm', 'aten::addmm', 'aten::bmm', 'aten::baddbmm', 'aten::mkldnn_convolution',
            'aten::convolution_backward')
OPTIMIZER_OPS = ('aten::_fused_adamw_', 'aten::lerp_', 'aten::_foreach_lerp_')     # AdamW, and the EMA's lerp

def kind(name:str) -> str:
    "The kind of work of a profiled op: 'gemm', 'attention', 'optimizer' or 'other'."
    if name in GEMM_OPS: return 'gemm'
    if 'scaled_dot_product' in name: return 'attention'
    if name in OPTIMIZER_OPS: return 'optimizer'
    return 'other'

def breakdown(events) -> dict:
    "Self CPU seconds by kind of work, and the matrix products' FLOPs, from the profiler's per-op averages."
    secs, flops, other = defaultdict(float), 0, {}
    for e in events:
        secs[kind(e.key)] += e.self_cpu_time_total / 1e6
        if kind(e.key) == 'gemm': flops += e.flops or 0
        if kind(e.key) == 'other': other[e.key[:60]] = e.self_cpu_time_total / 1e6
    top = dict(sorted(other.items(), key=lambda kv: -kv[1])[:8])
    return dict(seconds=dict(secs), gemm_flops=flops, largest_other_ops_s=top)

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', default='DiT-S/2')
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--threads', type=int, default=None, help="torch threads (default: torch's own)")
    p.add_argument('--modes', nargs='+', default=['eager', 'compiled'], choices=['eager', 'compiled'])
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    device = torch.device('cpu')
    mm, mm_flops = gemm(device, torch.float32)
    load_before, results = os.getloadavg(), []
    for impl in ('fastdit_lab', 'diffusers'):
        for mode in a.modes:
            step = make_step(build(impl, a.model), impl, mode == 'compiled', a.batch, device, torch.float32)
            warm = warm_up(step, device)                            # compiled: the graphs are built by now
            gemm_before = 3 * mm_flops / timed(mm, 3, device)
            with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof: step()
            gemm_after = 3 * mm_flops / timed(mm, 3, device)
            b = breakdown(prof.key_averages())
            total = sum(b['seconds'].values())
            yardstick = (gemm_before + gemm_after) / 2
            row = dict(impl=impl, mode=mode, step_s=total, seconds=b['seconds'], warm_up_steps=warm,
                       share={k: v / total for k, v in b['seconds'].items()},
                       gemm_flops_per_s=b['gemm_flops'] / b['seconds']['gemm'], largest_other_ops_s=b['largest_other_ops_s'],
                       yardstick_gemm_flops_per_s=[gemm_before, gemm_after])
            row['gemm_rate_over_yardstick'] = row['gemm_flops_per_s'] / yardstick
            results.append(row)
            print(f"{impl}/{mode}: step {total:.2f} s; " + ', '.join(f'{k} {v * 100:.0f} %' for k, v in sorted(
                row['share'].items(), key=lambda kv: -kv[1])) + f"; its GEMMs at {row['gemm_flops_per_s'] / 1e9:.1f} GFLOP/s "
                  f"({row['gemm_rate_over_yardstick'] * 100:.0f} % of the 2048² GEMM's {yardstick / 1e9:.1f})", flush=True)
    settings = dict(vars(a), device='cpu', torch_threads=torch.get_num_threads(), cpu_affinity=sorted(os.sched_getaffinity(0)),
                    latent='32x32x4', step='fwd+mse+bwd+AdamW+EMA', precision='fp32',
                    note='self CPU time of each profiled op; profiling adds a little time to each op')
    print('wrote', write_result('step_profile', settings, results, load_average_before=load_before,
                                load_average_after=os.getloadavg()))

if __name__ == '__main__': main()
