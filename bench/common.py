"Shared helpers for the benchmarks: machine description, commit, and writing results as JSON."
import datetime, json, os, platform, resource, subprocess, time
from pathlib import Path
import torch

RESULTS = Path(__file__).parent / 'results'

def machine() -> dict:
    "What the numbers were measured on."
    m = dict(platform=platform.platform(), python=platform.python_version(), torch=torch.__version__,
             cpu=platform.processor() or platform.machine(), cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads())
    if torch.cuda.is_available():
        m.update(gpu=torch.cuda.get_device_name(0), cuda=torch.version.cuda, gpu_count=torch.cuda.device_count())
    return m

def commit() -> str:
    """The git commit of the code measured (with '+dirty' when there are uncommitted changes); in a copy without git
    (a GPU machine the working tree was sent to), `$FASTDIT_COMMIT` as the sender set it."""
    root = Path(__file__).parent.parent
    if not (root / '.git').exists(): return os.environ.get('FASTDIT_COMMIT', 'unknown')
    try:
        rev = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=root, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--', 'fastdit_lab', 'bench'], cwd=root,
                               capture_output=True, text=True).stdout.strip()
        return rev + ('+dirty' if dirty else '') if rev else 'unknown'
    except OSError: return 'unknown'

COMMIT_AT_START = commit()

def timed(fn, n:int=1, device=None) -> float:
    "Wall-clock seconds of `n` calls of `fn()`, with the GPU's queue drained before and after (CUDA runs async)."
    sync = torch.cuda.synchronize if device is not None and torch.device(device).type == 'cuda' else (lambda: None)
    sync(); t0 = time.perf_counter()
    for _ in range(n): fn()
    sync()
    return time.perf_counter() - t0         # the code a benchmark runs is the code it imported, not what HEAD is when it ends

def minor_faults() -> int:
    "Pages this process has faulted in so far (minor faults: fresh memory the kernel had to map and zero)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def warm_up(fn, device=None, max_calls:int=8, settled_pages:int=2048) -> list:
    """Call `fn` until one call faults in fewer than `settled_pages` fresh pages (8 MiB), at most `max_calls` times;
    the (seconds, pages) of each call. On a CPU the allocator keeps handing a new training step fresh pages for
    several steps (each costs a page fault and a zeroing), so a step timed before that settles is timed partly on
    the allocator. At least two calls: a compiled step builds its graphs in the first."""
    calls = []
    while len(calls) < max_calls:
        pages = minor_faults(); s = timed(fn, 1, device); calls.append((s, minor_faults() - pages))
        if len(calls) >= 2 and calls[-1][1] < settled_pages: break
    return calls

def write_result(name:str, settings:dict, results, path:Path|None=None, **extra) -> Path:
    """Write `results` with machine, commit, date and `settings` to bench/results/<name>-<device>-<date>.json, or to
    `path` (a result written again as a long benchmark goes on)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    dev = 'cuda-' + torch.cuda.get_device_name(0).replace(' ', '_') if torch.cuda.is_available() else 'cpu'
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    path = path or RESULTS / f'{name}-{dev}-{stamp}.json'
    doc = dict(benchmark=name, date=datetime.datetime.now().isoformat(timespec='seconds'), commit=COMMIT_AT_START,
               machine=machine(), settings=settings, results=results, **extra)
    path.write_text(json.dumps(doc, indent=1))
    return path

def recipe_step(recipe:str, model:str, batch:int, device, dtype, backend:str|None=None):
    """One training step of `recipe` (objective, plan, loss terms, AdamW, EMA) on a fixed batch of 32×32×4 latents
    (ImageNet-256 under the SD VAE), as a closure, and the model's training FLOPs per image; `backend`: compile per block."""
    import copy
    from fastdit_lab.models.flops import model_flops
    from fastdit_lab.train.config import build_components, resolve_config
    from fastdit_lab.train.ema import ema_update
    from fastdit_lab.train.trainer import fused_adamw_supported
    c = build_components(resolve_config(recipe, model=model), (4, 32, 32), 1000)
    net = c.model.to(device).train()
    ema = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, fused=fused_adamw_supported(device))
    if backend is not None: net.compile_blocks(backend=backend)
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, 4, 32, 32, device=device, generator=g)
    y = torch.randint(0, 1000, (batch,), device=device, generator=g)
    def step():
        t, _ = c.sampler.sample(batch, device)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = c.objective.loss(net, x, y, t, torch.randn_like(x), plan=c.plan)['loss'].float().mean()
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True); ema_update(ema, net, 0.9999)
    return step, model_flops(net, c.plan)['train_flops']
