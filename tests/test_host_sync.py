"""No host-device synchronisation on the hot path: a training step between log/checkpoint boundaries reads nothing
back from the device and calls no collective, for every registered recipe.

On a GPU a host read (`.item()`, `bool(t)`, `.tolist()`, `.cpu()`, `nonzero()`, a boolean-mask index...) waits for
every kernel queued so far, and a collective waits for every rank: one per step keeps the GPU idle while Python
catches up. On the CPU there is nothing to wait for, but the same calls are made, so they can be counted: each is
wrapped, at the Python level and (for the reads that C++ code makes on the way, `_local_scalar_dense` under
`bool()`/`int()`, `nonzero` under a boolean index) with a dispatch mode seeing every aten op. Each read is charged to
the step in whose window it happened: from the entry of `train_step` to the entry of the next one (so the loading of
the next batch counts too). Reads by the data pipeline are of host tensors by design (indices, the batch before it
is moved to the device) and are left out: `Trainer.batches` is where the device starts."""
import collections, contextlib, functools, traceback
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
import fastdit_lab.all  # noqa: F401  (registers the method recipes)
from fastdit_lab.methods.adaptive import AdaptiveSampler
from fastdit_lab.train.config import RECIPES, resolve_config
from fastdit_lab.train.trainer import Trainer

pytestmark = pytest.mark.slow                     # every recipe trains a few steps with each host read counted

ALL = sorted(RECIPES)
LOG_EVERY, STEPS = 5, 7                  # steps 1-4 and 6 are between boundaries; 5 logs, 7 is the last

# the Python-level reads of a tensor's value, and the aten ops that read one (or whose output shape depends on values)
READS = ('item', 'tolist', 'cpu', 'numpy', 'nonzero', '__bool__', '__int__', '__float__', '__index__')
SYNC_OPS = {'_local_scalar_dense', 'nonzero', 'nonzero_static', 'masked_select', 'unique', '_unique', '_unique2',
            'unique_dim', 'unique_consecutive', 'bincount', 'is_nonzero', 'item'}
COLLECTIVES = {'accelerate.Accelerator': ('reduce', 'gather', 'gather_for_metrics', 'check_trigger', 'wait_for_everyone',
                                          'pad_across_processes'),
               'torch.distributed': ('all_reduce', 'all_gather', 'all_gather_into_tensor', 'all_gather_object',
                                     'broadcast', 'broadcast_object_list', 'reduce_scatter_tensor', 'barrier',
                                     'all_to_all_single', 'gather', 'scatter', 'reduce')}

class Counter:
    "Host reads and collectives, each charged to `self.step` with the line of project code that made it."
    def __init__(self): self.step, self.depth, self.host, self.reads = 0, 0, 0, collections.defaultdict(list)
    def hit(self, what:str):
        if self.host or self.depth: return               # a host tensor of the data pipeline, or a read inside a read
        frames = [f for f in traceback.extract_stack()[:-2] if 'fastdit_lab' in f.filename]
        where = f'{frames[-1].filename.split("fastdit_lab")[-1]}:{frames[-1].lineno} {frames[-1].line}' if frames else '?'
        self.reads[self.step].append(f'{what} at {where}')
    def wrap(self, fn, what:str):
        @functools.wraps(fn)
        def counted(*a, **kw):
            self.hit(what); self.depth += 1
            try: return fn(*a, **kw)
            finally: self.depth -= 1
        return counted

class SyncOps(TorchDispatchMode):
    "Every aten op that reads a value back (or sizes its output by values): what C++ does under `bool(t)`, `x[mask]`."
    def __init__(self, counter): super().__init__(); self.c = counter
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        if name in SYNC_OPS: self.c.hit(f'aten.{name}')
        elif name == 'index' and any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] if i is not None):
            self.c.hit('aten.index with a boolean mask')
        return func(*args, **(kwargs or {}))

@contextlib.contextmanager
def counting(monkeypatch):
    "Count host reads and collectives while the block runs; yields the `Counter`."
    import accelerate
    c = Counter()
    for name in READS: monkeypatch.setattr(torch.Tensor, name, c.wrap(getattr(torch.Tensor, name), f'Tensor.{name}'))
    monkeypatch.setattr(torch, 'nonzero', c.wrap(torch.nonzero, 'torch.nonzero'))
    for name in COLLECTIVES['accelerate.Accelerator']:
        monkeypatch.setattr(accelerate.Accelerator, name, c.wrap(getattr(accelerate.Accelerator, name), f'Accelerator.{name}'))
    for name in COLLECTIVES['torch.distributed']:
        if hasattr(torch.distributed, name):
            monkeypatch.setattr(torch.distributed, name, c.wrap(getattr(torch.distributed, name), f'torch.distributed.{name}'))
    step = Trainer.train_step
    def train_step(tr, x, y):                              # the window of step tr.step + 1 opens here
        c.step = tr.step + 1
        return step(tr, x, y)
    monkeypatch.setattr(Trainer, 'train_step', train_step)
    batches = Trainer.batches
    def host_batches(tr):                                  # the data pipeline works on host tensors by design
        it = batches(tr)
        while True:
            c.host += 1
            try: b = next(it)
            finally: c.host -= 1
            yield b
    monkeypatch.setattr(Trainer, 'batches', host_batches)
    with SyncOps(c): yield c

def tiny(recipe:str, run_dir, **kw):
    "`recipe` on a tiny model of its family: 7 steps, logging every 5, its stages (if any) switching at step 3."
    over = RECIPES[recipe]['overrides']
    family = over.get('model', 'DiT-S/2').split('-')[0]
    stages = [dict(s, at_step=3) for s in over.get('stages', [])]
    return resolve_config(recipe, model=f'{family}-T/2', model_args=dict(hidden_size=32, depth=7, num_heads=2),
                          data='shapes', image_size=8, batch_size=4, steps=STEPS, stages=stages, log_every=LOG_EVERY,
                          ckpt_every=10 ** 6, sample_n=2, sample_steps=2, run_dir=str(run_dir), **kw)

def reads_per_step(cfg, monkeypatch) -> dict[int, list[str]]:
    "{step: the host reads and collectives charged to it} of one `fit` of `cfg` (steps 1..`cfg.steps`)."
    from accelerate.state import AcceleratorState
    AcceleratorState._reset_state(True)
    tr = Trainer(cfg, quiet=True)
    with counting(monkeypatch) as c:
        boundary = {}
        at = Trainer.at_boundary
        monkeypatch.setattr(Trainer, 'at_boundary', lambda self: boundary.setdefault(self.step, at(self)))
        tr.fit()
    assert sorted(boundary) == list(range(1, cfg.steps + 1)), sorted(boundary)
    if isinstance(tr.sampler, AdaptiveSampler):          # its policy update (every `every` steps, the first at step 1)
        for s in boundary: boundary[s] |= (s - 1) % tr.sampler.every == 0     # measures losses: a boundary of its own
    return {s: c.reads.get(s, []) for s in range(1, cfg.steps + 1)}, boundary

@pytest.mark.parametrize('recipe', ALL)
def test_no_host_reads_between_boundaries(recipe, tmp_path, monkeypatch):
    "Zero host reads and collectives on every step that is not a log/checkpoint step; some at the log step."
    reads, boundary = reads_per_step(tiny(recipe, tmp_path / 'run'), monkeypatch)
    inner = {s: r for s, r in reads.items() if not boundary[s]}
    assert sorted(inner) == ([2, 3, 4, 6] if 'adaptive' in recipe else [1, 2, 3, 4, 6]), sorted(inner)
    bad = {s: collections.Counter(r) for s, r in inner.items() if r}
    assert not bad, f'{recipe}: host reads on steps between boundaries:\n' + '\n'.join(
        f'  step {s}: ' + '; '.join(f'{n}× {w}' for w, n in r.items()) for s, r in bad.items())
    assert reads[LOG_EVERY], 'the log step reads nothing back: the counter does not see the reads'

def test_the_fused_skip_runs_and_the_unfused_one_is_seen(tmp_path, monkeypatch):
    """The step skips a non-finite update on the device through the fused AdamW's `found_inf` (torch has the fused
    kernel on CPU as on CUDA); an optimizer without it (`fused=False`) costs one `bool(finite)` per step, which the
    counter sees, charged to the trainer's `step_unless_nonfinite`."""
    import fastdit_lab.train.trainer as trainer
    from accelerate.state import AcceleratorState
    AcceleratorState._reset_state(True)
    tr = Trainer(tiny('sit', tmp_path / 'fused'), quiet=True)
    assert tr.opt.optimizer.defaults['fused']
    monkeypatch.setattr(trainer, 'fused_adamw_supported', lambda device: False)
    reads, boundary = reads_per_step(tiny('sit', tmp_path / 'unfused'), monkeypatch)
    # (torch's unfused AdamW also reads each parameter's step count, a tensor it keeps on the host by design)
    skip = {s: sum('Tensor.__bool__ at /train/trainer.py' in w and 'bool(finite)' in w for w in r)
            for s, r in reads.items() if not boundary[s]}
    assert skip == {1: 1, 2: 1, 3: 1, 4: 1, 6: 1}, skip

def test_dydit_sliced_sampling_waits_once_per_block(monkeypatch):
    """DyDiT's sliced forward (sampling: one t for the batch) must read sizes back to cut its weights, but its head
    and group widths depend on t alone: one read for all blocks, plus one per block for the tokens its router keeps,
    plus the check that the batch shares t. That is L + 2 reads per forward, where reading each block's widths on
    its own costs 3L + 1."""
    from fastdit_lab.methods.dydit import DyDiT, DynamicPlan
    torch.manual_seed(0)
    L = 5
    m = DyDiT(input_size=8, patch_size=2, in_channels=3, hidden_size=32, depth=L, num_heads=4, num_classes=10).eval()
    for n, p in m.named_parameters():                 # any trained weights (adaLN-Zero would make every block the identity)
        if not n.startswith('routers'): p.data.normal_(0, 0.05)
    for r in m.routers:                                # gates that switch some heads, groups and tokens off
        torch.nn.init.normal_(r.head.bias, 0, 3); torch.nn.init.normal_(r.mlp.bias, 0, 3)
        torch.nn.init.normal_(r.token[2].bias, 0, 0.3)
    x, t, y = torch.randn(4, 3, 8, 8), torch.full((4,), 300.), torch.tensor([1, 2, 3, 4])
    with torch.no_grad():
        want, aux_masked = m(x, t, y, plan=DynamicPlan(sliced=False), return_aux=True)
        with counting(monkeypatch) as c: out, aux = m(x, t, y, plan=DynamicPlan(), return_aux=True)
    reads = list(c.reads[0])                           # before the checks below, which read values themselves
    assert aux.sliced and 0 < aux.head_gates.mean() < 1 and 0 < aux.mlp_gates.mean() < 1
    assert torch.allclose(out, want, atol=1e-5)                # the same forward as the masked one
    assert torch.equal(aux.head_gates, aux_masked.head_gates) and torch.equal(aux.mlp_gates, aux_masked.mlp_gates)
    assert len(reads) == L + 2, '\n'.join(reads)
