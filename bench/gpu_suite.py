"""The GPU claims measured in one command and written to one JSON in bench/results/: DiT-XL/2 training img/s and MFU
(bf16, per-block compile, flash attention) up to the largest batch that fits, ours against diffusers' DiT in the same
loop, TREAD's and MaskDiT's training speed-ups, DyDiT λ = 0.5's sampling speed-up (wall clock), peak memory per size,
and a short evidence race (dense, SiT, FasterDiT, TREAD, FasterDiT + TREAD) scored by proxy FID and class accuracy.

    python bench/gpu_suite.py               # one H100/H200, sized for about 9 minutes
    python bench/gpu_suite.py --smoke       # CPU, tiny sizes, under a minute: the same code, so it is known to run

`--smoke` changes only sizes, the data set and the compile backend (dynamo's `eager`: graphs, guards and graph breaks
without inductor's C++ build), never the code path. Before any part, one small function is compiled with the backend
(`compiler_check`): inductor on a GPU builds Triton kernels, which need a C compiler on the machine; where it cannot,
the suite falls back to dynamo's `eager` backend and the JSON says so. Each part records its seconds; a part that
fails records its error and the others still run, and the JSON says which failed (the exit status too). Every ratio
is of medians of rounds measured side by side in this process, with the arms' order rotated from round to round.
"""
import argparse, contextlib, copy, gc, statistics, sys, time, traceback
from pathlib import Path
import torch
import torch.nn.functional as F
sys.path.insert(0, str(Path(__file__).parent))
import common
from common import recipe_step, timed, write_result
import throughput
import fastdit_lab.all                  # noqa: F401  (every method registers its recipes, models, plans and losses)
from fastdit_lab.models import dit as dit_module
from fastdit_lab.models.flops import model_flops
from fastdit_lab.train.defaults import PEAK_TFLOPS
from fastdit_lab.train.trainer import fused_adamw_supported

PROFILES = {
    # one GPU: XL/2 on 32×32×4 latents (ImageNet-256 through the SD VAE)
    'gpu': dict(size='XL/2', batches=[32, 64, 128, 256, 512], steps=5, rounds=3, compare_batch=64, plan_batch=64,
                memory_sizes=['S/2', 'B/2', 'L/2', 'XL/2'], memory_batch=32, dydit_size='XL/2', dydit_batch=64,
                dydit_steps=50, backend='inductor', dense_budget_s=180,
                race=dict(model='DiT-S/2', data='cifar10', image_size=None, budget=25.0, batch=128, n=1000,
                          sample_steps=25, lr=1e-4, setup_s=30, overhead_s=12, min_budget=8)),
    'smoke': dict(size='T/4', batches=[2, 4], steps=1, rounds=2, compare_batch=2, plan_batch=2,
                  memory_sizes=['T/8', 'T/4'], memory_batch=2, dydit_size='T/4', dydit_batch=2, dydit_steps=2,
                  backend='eager', dense_budget_s=60,
                  race=dict(model='DiT-T/4', data='shapes', image_size=16, budget=1.0, batch=8, n=20, sample_steps=2,
                            lr=1e-3, setup_s=5, overhead_s=2, min_budget=0.5)),
}
RACE_ARMS = [('dense (DiT)', 'dit', {}), ('SiT', 'sit', {}), ('FasterDiT', 'fasterdit', {}), ('TREAD', 'tread', {}),
             ('FasterDiT + TREAD', 'fasterdit', {'plan': {'name': 'tread', 'ratio': 0.5, 'start': 2, 'end': -4}})]
MIN_PART_S = 20
TARGETS = dict(tread_speedup=1.6, maskdit_speedup=1.8, dydit_sampling_speedup=1.8, ours_over_diffusers=1.1)

def attention_kernel(device, dtype):
    """Flash attention only, around the timed bf16 steps: on a GPU an error, not a silent fallback, when a call cannot
    run it; on the CPU (the smoke run) every call is checked against flash's conditions instead, so that a call the GPU
    would refuse fails the smoke run too. Nothing at fp32, which flash does not run."""
    if dtype not in (torch.float16, torch.bfloat16): return contextlib.nullcontext()
    if device.type == 'cuda':
        from torch.nn.attention import SDPBackend, sdpa_kernel
        return sdpa_kernel(SDPBackend.FLASH_ATTENTION)
    return flash_conditions()

SDPA = F.scaled_dot_product_attention

def flash_checked(q, k, v, attn_mask=None, *args, **kw):
    "`F.scaled_dot_product_attention` refusing what CUDA's flash kernel refuses: fp32 inputs, a mask, a head dim > 256 or not a multiple of 8."
    d = q.shape[-1]
    if q.dtype not in (torch.float16, torch.bfloat16) or attn_mask is not None or d % 8 or d > 256:
        raise RuntimeError(f'flash attention cannot run this call (dtype {q.dtype}, mask {attn_mask is not None}, '
                           f'head dim {d}); on a GPU the flash-only kernel choice would fail here')
    return SDPA(q, k, v, attn_mask, *args, **kw)

@contextlib.contextmanager
def flash_conditions():
    "Within it, every SDPA call goes through `flash_checked` (one function: a compiled graph traced with it stays valid)."
    F.scaled_dot_product_attention = flash_checked
    try: yield
    finally: F.scaled_dot_product_attention = SDPA

def peak_gb(device) -> float|None:
    "Peak CUDA memory since the last reset, in GB (None on CPU, where the process's peak says nothing per part)."
    return torch.cuda.max_memory_allocated(device) / 1e9 if device.type == 'cuda' else None

def reset(device) -> float|None:
    """Free what earlier steps left (a compiled module holds a reference cycle, so collect first) and restart the peak;
    the GB still allocated after that (what a later peak includes that is not the part's own: 0 unless something leaked)."""
    gc.collect()
    if device.type != 'cuda': return None
    torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats(device)
    return torch.cuda.memory_allocated(device) / 1e9

def build(impl, name, device):
    "`throughput.build` with the weights created on `device`: a DiT-XL/2 initialised on one CPU core takes seconds."
    with torch.device(device): return throughput.build(impl, name)

def flops_of(name) -> float:
    "Training FLOPs per image of our DiT `name`, from a model on the meta device (no memory, no initialisation)."
    with torch.device('meta'): return model_flops(throughput.build('fastdit_lab', name))['train_flops']

def graphs_compiled() -> int:
    "Graphs dynamo has compiled in this process so far (a recompilation inside a timed step would count here)."
    from torch._dynamo.utils import counters
    return counters['stats']['unique_graphs']

def rounds(arms:dict, batch:int, steps:int, n_rounds:int, device, dtype) -> dict:
    """img/s of each arm (a step closure) per round, the arms' order rotated every round; medians, the raw rates, and
    the graphs compiled during the arm's timed steps (0 unless a guard failed after warm-up: then its rate is wrong)."""
    rates, compiled = {k: [] for k in arms}, {k: 0 for k in arms}
    for r in range(n_rounds):
        order = list(arms)[r % len(arms):] + list(arms)[:r % len(arms)]
        with attention_kernel(device, dtype):
            for k in order:
                g = graphs_compiled()
                rates[k].append(steps * batch / timed(arms[k], steps, device))
                compiled[k] += graphs_compiled() - g
    return {k: dict(img_per_s=v, median_img_per_s=statistics.median(v), graphs_compiled_while_timed=compiled[k])
            for k, v in rates.items()}

def warm(step, device, dtype) -> float:
    "Seconds of the first call (compilation included), then one more call."
    with attention_kernel(device, dtype): first = timed(step, 1, device); timed(step, 1, device)
    return first

def dense_training(P, device, dtype, peak):
    "Our DiT at `size`, compiled, at each batch until one does not fit: img/s, MFU, peak memory, first-step seconds."
    name, rows, t0 = f"DiT-{P['size']}", [], time.perf_counter()
    flops = flops_of(name)
    for batch in P['batches']:
        if rows and time.perf_counter() - t0 > P['dense_budget_s']:
            rows.append(dict(batch=batch, skipped=f"the part's {P['dense_budget_s']:.0f} s were spent")); break
        left_gb = reset(device)
        try:
            step = throughput.make_step(build('fastdit_lab', name, device), 'fastdit_lab', True, batch, device, dtype,
                                        backend=P['backend'])
            first = warm(step, device, dtype)
            r = rounds({'ours': step}, batch, P['steps'], P['rounds'], device, dtype)['ours']
            rows.append(dict(batch=batch, first_step_s=first, **r, mfu=r['median_img_per_s'] * flops / peak if peak else None,
                             peak_memory_gb=peak_gb(device), allocated_before_gb=left_gb))
            print(f"  {name} batch {batch}: {r['median_img_per_s']:.1f} img/s", flush=True)
        except torch.cuda.OutOfMemoryError:
            rows.append(dict(batch=batch, out_of_memory=True)); break
        except Exception as e:                        # e.g. a cuBLAS workspace that cannot be had near the limit
            traceback.print_exc(); rows.append(dict(batch=batch, error=f'{type(e).__name__}: {e}')); break
        finally:
            step = None; reset(device)
    fits = [r for r in rows if 'median_img_per_s' in r]
    best = max(fits, key=lambda r: r['median_img_per_s']) if fits else None
    return dict(model=name, train_flops_per_img=flops, per_batch=rows, largest_batch=fits[-1]['batch'] if fits else None,
                largest_batch_is_the_limit=any(r.get('out_of_memory') for r in rows), best=best)

def ours_vs_diffusers(P, device, dtype, peak):
    """Ours and diffusers' DiTTransformer2DModel in the same loop and batch, eager and compiled. Both compile per block
    (regional compilation: one block's compile serves every block, so compiling XL/2 costs one block's time)."""
    name, batch = f"DiT-{P['size']}", P['compare_batch']
    import diffusers                                  # noqa: F401  (missing: fail before our model is built and compiled)
    arms = {f'{impl}/{mode}': throughput.make_step(build(impl, name, device), impl, mode == 'compiled', batch, device,
                                                   dtype, per_block=True, backend=P['backend'])
            for impl in ('fastdit_lab', 'diffusers') for mode in ('compiled', 'eager')}
    first = {k: warm(s, device, dtype) for k, s in arms.items()}   # ours was compiled by dense_training: not comparable
    res = rounds(arms, batch, P['steps'], P['rounds'], device, dtype)
    med = {k: v['median_img_per_s'] for k, v in res.items()}
    return dict(model=name, batch=batch, first_step_s=first, arms=res, diffusers_compile='per block (transformer_blocks)',
                compile_options={'fastdit_lab': {**dit_module.COMPILE_DEFAULTS, 'backend': P['backend']},
                                 'diffusers': {'backend': P['backend'], 'dynamic': None, 'fullgraph': False}},
                ours_over_diffusers=med['fastdit_lab/compiled'] / med['diffusers/compiled'],
                ours_over_diffusers_eager=med['fastdit_lab/eager'] / med['diffusers/eager'],
                compile_speedup={impl: med[f'{impl}/compiled'] / med[f'{impl}/eager'] for impl in ('fastdit_lab', 'diffusers')})

def token_plans(P, device, dtype, peak):
    "TREAD and MaskDiT training img/s over the dense DiT (EDM, as both recipes), same batch, compiled, side by side."
    size, batch = P['size'], P['plan_batch']
    spec = {'dense': ('edm', f'DiT-{size}'), 'tread': ('tread', f'DiT-{size}'), 'maskdit': ('maskdit', f'MaskDiT-{size}')}
    arms, flops = {}, {}
    for k, (recipe, model) in spec.items(): arms[k], flops[k] = recipe_step(recipe, model, batch, device, dtype, P['backend'])
    for s in arms.values(): warm(s, device, dtype)
    res = rounds(arms, batch, P['steps'], P['rounds'], device, dtype)
    d = res['dense']['median_img_per_s']
    for k, v in res.items(): v.update(speedup_vs_dense=v['median_img_per_s'] / d, flop_ratio_vs_dense=flops[k] / flops['dense'])
    return dict(size=size, batch=batch, arms=res, tread_speedup=res['tread']['speedup_vs_dense'],
                maskdit_speedup=res['maskdit']['speedup_vs_dense'])

def dydit_sampling(P, device, dtype, peak):
    "DDIM sampling wall clock of the dense forward and DyDiT's sliced one at λ = 0.5 (gates set, `dydit_speed.py`)."
    from dydit_speed import set_gates
    from fastdit_lab.diffusion.objectives import EpsilonObjective
    from fastdit_lab.diffusion.process import DDPM
    from fastdit_lab.diffusion.sampling import sample
    from fastdit_lab.methods.dydit import DynamicPlan
    torch.manual_seed(0)
    with torch.device(device): base = dit_module.make_model(f"DyDiT-{P['dydit_size']}").eval()
    for n, prm in base.named_parameters():             # stand-in trained weights: adaLN-Zero would make blocks identities
        if not n.startswith('routers'): prm.data.normal_(0, 0.02)
    b = P['dydit_batch']; shape = (b, 4, 32, 32); y = torch.randint(0, 1000, (b,), device=device)
    dyn = copy.deepcopy(base)
    gates = set_gates(dyn, 0.5, torch.randn(shape, device=device), torch.full((b,), 500., device=device), y)
    obj, arms = EpsilonObjective(DDPM()), {'dense': (base, None), 'dydit-0.5': (dyn, DynamicPlan())}
    def run(k):
        m, plan = arms[k]
        g = torch.Generator(device=device).manual_seed(0)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32), torch.no_grad(), \
                attention_kernel(device, dtype):
            sample(m, obj, shape, y=y, method='ddim', steps=P['dydit_steps'], device=device, generator=g, plan=plan)
    for k in arms: run(k)
    secs = {k: [] for k in arms}
    for r in range(P['rounds']):
        for k in (list(arms) if r % 2 == 0 else list(arms)[::-1]): secs[k].append(timed(lambda: run(k), 1, device))
    # the FLOPs ratio the gates reach at the calibration point, at the precision and attention kernel that were timed
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32), torch.no_grad(), \
            attention_kernel(device, dtype):
        _, aux = dyn(torch.randn(shape, device=device), torch.full((b,), 500., device=device), y, plan=DynamicPlan(),
                     return_aux=True)
    med = {k: statistics.median(v) for k, v in secs.items()}
    return dict(size=P['dydit_size'], batch=b, steps=P['dydit_steps'], seconds=secs, median_seconds=med, gates=gates,
                flops_ratio=float(aux.metrics['plan/flops_ratio'].mean()), speedup=med['dense'] / med['dydit-0.5'])

def planned_gb(name:str, batch:int, dtype) -> float:
    "Peak memory of one training step as `fastdit plan` predicts it (weights, gradients, AdamW, EMA, activations), GB."
    from fastdit_lab.models.memory import plan_memory
    with torch.device('meta'): m = throughput.build('fastdit_lab', name)
    return plan_memory(m, batch, precision='bf16' if dtype == torch.bfloat16 else 'fp32')['parts']['total'] / 1e9

def memory_per_size(P, device, dtype, peak):
    """Peak memory of one eager training step (bf16 autocast, AdamW, EMA) per size at one batch, beside what
    `fastdit plan` predicts for it (its activation model was fitted to eager steps on a CPU: this checks it on a GPU)."""
    rows = []
    for size in P['memory_sizes']:
        name = f'DiT-{size}'
        left_gb = reset(device)
        try:
            step = throughput.make_step(build('fastdit_lab', name, device), 'fastdit_lab', False,
                                        P['memory_batch'], device, dtype)
            with attention_kernel(device, dtype): timed(step, 2, device)
            got, want = peak_gb(device), planned_gb(name, P['memory_batch'], dtype)
            rows.append(dict(model=name, batch=P['memory_batch'], peak_memory_gb=got, planned_gb=want,
                             plan_error=want / got - 1 if got else None, allocated_before_gb=left_gb))
        except torch.cuda.OutOfMemoryError: rows.append(dict(model=name, out_of_memory=True))
        finally: step = None; reset(device)
    return rows

def cifar_dir(given=None) -> str:
    import os
    root = os.environ.get('FASTDIT_DATA') or Path(__file__).resolve().parents[2] / 'shared' / 'data'
    return given or str(Path(root) / 'cifar10-jpeg')

def race_budget(P) -> float:
    "Training seconds per arm of the race: the profile's, or less to fit the time left; `OutOfTime` under `min_budget`."
    r = P['race']
    budget = min(r['budget'], (time_left(P) - r['setup_s']) / len(RACE_ARMS) - r['overhead_s'])
    check_time(budget >= r['min_budget'], f"{time_left(P):.0f} s of the time limit left: under {r['min_budget']} s "
                                          "of training per arm")
    return budget

def evidence_race(P, device, dtype, peak):
    """Equal training time per arm (`race.py`) on CIFAR-10 pixels (shapes in the smoke run): proxy FID, class accuracy.
    Under `--time-limit` each arm's budget shrinks to what is left (after `overhead_s` per arm for sampling and
    scoring), down to `min_budget`; below that the race is not run."""
    import race
    r, budget = P['race'], race_budget(P)
    a = argparse.Namespace(data=r['data'], data_dir=None, image_size=r['image_size'], model=r['model'], budget=budget,
                           batch=r['batch'], lr=r['lr'], seeds=[0], n=r['n'], sample_steps=r['sample_steps'], arms=None,
                           threads=None, steps=None, tag='')
    if r['data'] != 'shapes': a.data_dir = cifar_dir(P.get('data_dir'))
    arms = [(label, recipe, {**over, 'routing_every': 0}) for label, recipe, over in RACE_ARMS]   # it scores samples, not routes
    rows, table = race.race('gpu_suite_race', arms, a, write=False)
    return dict(settings=vars(a), rows=rows, summary=table)

class OutOfTime(Exception): "A part not run because the suite's `--time-limit` would not hold it."

def time_left(P) -> float:
    "Seconds left of the suite's `--time-limit` (infinite without one)."
    return P['deadline'] - time.perf_counter() if P.get('deadline') else float('inf')

def check_time(ok:bool, why:str):
    if not ok: raise OutOfTime(why)

def compiler_check(device, backend:str) -> dict:
    """Compile and run one small function with `backend` on `device` before any part does. Inductor on a GPU builds
    Triton kernels, which need a C compiler and Python's headers on the machine; without them every compiled part
    would fail one by one. On failure the suite falls back to dynamo's `eager` backend (graphs and guards, aten's
    kernels), so the dense, plan and peer figures still come, and the JSON says that their compiled arms are not
    inductor's."""
    torch._dynamo.reset()
    try:
        fn = torch.compile(lambda x: F.gelu(x * 2 + 1, approximate='tanh'), backend=backend)
        x = torch.randn(64, 64, device=device)
        ok = torch.allclose(fn(x), F.gelu(x * 2 + 1, approximate='tanh'), atol=1e-5)
        if not ok: raise RuntimeError('the compiled function disagrees with eager')
        return dict(backend=backend, ok=True)
    except Exception as e:
        print(f'the {backend} backend cannot compile here ({type(e).__name__}: {str(e)[:300]}); falling back to eager', flush=True)
        return dict(backend='eager', ok=False, wanted=str(backend), error=f'{type(e).__name__}: {str(e)[:1000]}')
    finally: torch._dynamo.reset()

# the default order: what is quick and certain first, so that a run cut short keeps the most figures
PARTS = dict(memory_per_size=memory_per_size, dydit_sampling=dydit_sampling, dense_training=dense_training,
             token_plans=token_plans, ours_vs_diffusers=ours_vs_diffusers, evidence_race=evidence_race)

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--smoke', action='store_true', help='tiny sizes on CPU (or any device), the same code')
    p.add_argument('--parts', nargs='+', choices=list(PARTS), default=list(PARTS),
                   help='the parts, in the order they run (default: the quick ones first, the race last)')
    p.add_argument('--backend', default=None, help="torch.compile's backend (default: the profile's, inductor on a "
                                                   "GPU, dynamo's eager in the smoke run)")
    p.add_argument('--precision', choices=['bf16', 'fp32'], default='bf16')
    p.add_argument('--data-dir', default=None, help='CIFAR-10 folder for the race (default: $FASTDIT_DATA/cifar10-jpeg, '
                                                    'else ../shared/data/cifar10-jpeg beside the repository)')
    p.add_argument('--out', default=None, help='folder for the JSON (default: bench/results)')
    p.add_argument('--time-limit', type=float, default=None, metavar='S',
                   help='seconds for the whole suite: parts run in the order of --parts, a part that would start with '
                        f'under {MIN_PART_S} s left is skipped, and the race shortens its arms to fit')
    a = p.parse_args(argv)
    if a.out: common.RESULTS = Path(a.out)
    P = dict(PROFILES['smoke' if a.smoke else 'gpu'], **({'backend': a.backend} if a.backend else {}), data_dir=a.data_dir,
             deadline=time.perf_counter() + a.time_limit if a.time_limit else None)
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    dtype = torch.bfloat16 if a.precision == 'bf16' else torch.float32
    if device.type == 'cuda': torch.backends.cuda.matmul.allow_tf32 = True; torch.backends.cudnn.allow_tf32 = True
    peak = next((v * 1e12 for k, v in PEAK_TFLOPS.items() if device.type == 'cuda' and k in torch.cuda.get_device_name(0)), None)
    settings = dict(profile='smoke' if a.smoke else 'gpu', **P, precision=a.precision, device=str(device), peak_flops=peak,
                    attention=('flash only (sdpa_kernel)' if device.type == 'cuda' else "sdpa, checked against flash's "
                               "conditions") + ' in the timed bf16 steps', adamw_fused=fused_adamw_supported(device),
                    targets=TARGETS)
    settings['compiler_check'] = check = compiler_check(device, P['backend'])
    P['backend'] = settings['backend'] = check['backend']
    results, failed, skipped, t_all, path = {}, [], [], time.perf_counter(), None
    for name in a.parts:
        t0 = time.perf_counter(); print(f'== {name}', flush=True)
        try:
            check_time(time_left(P) >= MIN_PART_S, f'{time_left(P):.0f} s of the time limit left')
            out = PARTS[name](P, device, dtype, peak)
            results[name] = dict(ok=True, result=out)
        except OutOfTime as e:
            skipped.append(name); results[name] = dict(ok=False, skipped=str(e))
        except Exception as e:                        # one part's failure must not lose the others' figures
            traceback.print_exc(); failed.append(name)
            results[name] = dict(ok=False, error=f'{type(e).__name__}: {e}')
        results[name]['seconds'] = time.perf_counter() - t0
        state = 'ok' if results[name]['ok'] else 'skipped' if name in skipped else 'FAILED'
        print(f"   {name}: {state} in {results[name]['seconds']:.1f} s", flush=True)
        path = write(a, settings, results, failed, skipped, t_all, path, done=False)   # what is measured survives a kill
    path = write(a, settings, results, failed, skipped, t_all, path, done=True)
    return path, failed

def write(a, settings, results, failed, skipped, t_all, path, done:bool) -> Path:
    "The suite's JSON with the parts run so far and the summary of their figures."
    summary = {k: results[part]['result'].get(k) for part, k in
               [('ours_vs_diffusers', 'ours_over_diffusers'), ('token_plans', 'tread_speedup'),
                ('token_plans', 'maskdit_speedup')] if results.get(part, {}).get('ok')}
    if results.get('dydit_sampling', {}).get('ok'): summary['dydit_sampling_speedup'] = results['dydit_sampling']['result']['speedup']
    if results.get('ours_vs_diffusers', {}).get('ok'):
        summary['compile_speedup'] = results['ours_vs_diffusers']['result']['compile_speedup']['fastdit_lab']
    if results.get('dense_training', {}).get('ok'):
        best = results['dense_training']['result']['best'] or {}
        summary.update(dense_img_per_s=best.get('median_img_per_s'), dense_mfu=best.get('mfu'), dense_batch=best.get('batch'))
    path = write_result('gpu_suite-smoke' if a.smoke else 'gpu_suite', settings, results, path=path, summary=summary,
                        failed=failed, skipped=skipped, complete=done, total_seconds=time.perf_counter() - t_all)
    if done:
        print('summary:', {k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items()})
        print('wrote', path)
    return path

if __name__ == '__main__':
    _, failed = main()
    sys.exit(1 if failed else 0)
