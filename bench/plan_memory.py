"""The activation model of `fastdit plan` against what PyTorch keeps, measured on this CPU, size by size.

For each case: the model's `held` (alive after the forward: what autograd saved for the backward, and the output)
and `peak` (the most alive at once in forward + backward), both beside weights, gradients and optimizer, predicted
by `models.memory.step_bytes` and measured by `measure_activations` (every aten op's outputs, one count per
storage), and the relative error. With the DiT-XL/2 plan of the issue's example beside them.

    python bench/plan_memory.py
"""
import argparse, sys, time
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent))
from common import write_result
import fastdit_lab.all  # noqa: F401  (the token plans)
from fastdit_lab.models.dit import build_plan, make_model
from fastdit_lab.models.memory import GiB, measure_activations, plan_memory, step_bytes

TREAD = dict(name='tread', ratio=0.5, start=2, end=-4)
MASK = dict(name='maskdit', mask_ratio=0.5)
DYDIT = dict(name='dydit')
CASES = [(m, img, B, plan, prec, ck) for prec in ('fp32', 'bf16') for ck in (False, True)
         for m, img, B, plan in [('DiT-S/2', 16, 4, None), ('DiT-S/2', 16, 16, None), ('DiT-S/2', 32, 4, None),
                                 ('DiT-S/2', 32, 8, None), ('DiT-B/2', 32, 4, None), ('DiT-S/2', 32, 8, TREAD),
                                 ('DiT-S/2', 16, 8, TREAD), ('MaskDiT-S/2', 32, 4, MASK), ('DyDiT-S/2', 16, 4, DYDIT)]]

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='the first four cases only')
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for name, img, B, plan, prec, ck in CASES[:4] if a.quick else CASES:
        torch.manual_seed(0)
        m = make_model(name, input_size=img, num_classes=10); m.grad_checkpointing = ck
        x, t, y = torch.randn(B, m.config['in_channels'], img, img), torch.rand(B) * 999, torch.randint(0, 10, (B,))
        p = build_plan(plan) if plan else None
        t0 = time.perf_counter()
        got = measure_activations(m, x, t, y, p, prec)
        pred = step_bytes(m, B, p, prec, ck)
        row = dict(model=name, image_size=img, batch=B, plan=(plan or {'name': 'dense'})['name'], precision=prec,
                   grad_checkpointing=ck, seconds=round(time.perf_counter() - t0, 2),
                   **{f'{k}_{w}': v for k in ('held', 'peak') for w, v in (('measured', got[k]), ('predicted', pred[k]))},
                   **{f'{k}_error': pred[k] / got[k] - 1 for k in ('held', 'peak')})
        rows.append(row)
        print(f"{name:12s} {img:3d}px b{B:<3d} {row['plan']:8s} {prec} {'ckpt' if ck else '    '} held "
              f"{got['held'] / 2**20:8.2f} MiB ({row['held_error']:+.1%})  peak {got['peak'] / 2**20:8.2f} MiB "
              f"({row['peak_error']:+.1%})", flush=True)
    worst = max(abs(r[f'{k}_error']) for r in rows for k in ('held', 'peak'))
    with torch.device('meta'): xl = make_model('DiT-XL/2')
    example = {}
    for label, kw in dict(ddp={}, fsdp=dict(fsdp=True), grad_checkpointing=dict(grad_checkpointing=True),
                          tread=dict(plan=build_plan(TREAD))).items():
        r = plan_memory(xl, 256, gpus=8, precision='bf16', **kw)
        example[label] = dict(parts_gib={k: v / GiB for k, v in r['parts'].items()}, max_per_gpu_batch=r['max_per_gpu_batch'])
    path = write_result('plan_memory', dict(cases=len(rows), threads=1, tolerance=0.15,
                                            example='DiT-XL/2 256 px, batch 256 on 8 H100-80GB, bf16'),
                        rows, max_abs_error=worst, xl2_example=example)
    print(f'max |error| {worst:.1%}; wrote {path}')

if __name__ == '__main__': main()
