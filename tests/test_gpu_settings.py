"""Every registered recipe under the settings a GPU run uses, proven on the CPU: bf16 autocast, `--compile` (the
blocks compiled one by one, `DiT.compile_blocks`) and both, training and sampling; activation checkpointing with
every plan; and, with dynamo's counters, no recompilation after warm-up and no graph break in the block stack.

Each recipe runs on a tiny network of its own kind (DiT, MaskDiT or DyDiT at 64 wide, 7 deep, on 8-px shapes) with
its stages moved into the run, so a stage switch happens while it is compiled."""
import copy
import pytest
import torch
from torch._dynamo.utils import counters
import fastdit_lab.all  # noqa: F401  (registers the method recipes)
from fastdit_lab.models import dit
from fastdit_lab.models.dit import DiTBlock
from fastdit_lab.train.config import RECIPES, resolve_config
from fastdit_lab.train.trainer import Trainer

ALL = sorted(RECIPES)
SETTINGS = {'bf16': dict(mixed_precision='bf16'), 'compile': dict(compile=True),
            'bf16+compile': dict(mixed_precision='bf16', compile=True)}

def tiny(recipe:str, run_dir, steps:int=4, switch_at:int=-2, **kw):
    "`recipe` on a tiny model of its family, its stages (if any) starting `switch_at` steps from the end."
    over = RECIPES[recipe]['overrides']
    family = over.get('model', 'DiT-S/2').split('-')[0]
    stages = [dict(s, at_step=switch_at) for s in over.get('stages', [])]
    return resolve_config(recipe, model=f'{family}-T/2', model_args=dict(hidden_size=64, depth=7, num_heads=2),
                          data='shapes', image_size=8, batch_size=4, steps=steps, stages=stages, log_every=steps,
                          ckpt_every=10 ** 6, sample_n=2, sample_steps=2, run_dir=str(run_dir), **kw)

def trainer(cfg) -> Trainer:
    """A Trainer for `cfg`, on a fresh accelerate state (its precision is fixed once per process otherwise) and a fresh
    dynamo cache and counters (one run per process, as on the command line: earlier tests' graphs would count)."""
    from accelerate.state import AcceleratorState
    AcceleratorState._reset_state(True); torch._dynamo.reset(); counters.clear()
    tr = Trainer(cfg, quiet=True)
    for cb in tr.callbacks: cb.before_fit(tr)
    return tr

def steps(tr:Trainer, n:int, batches) -> list[float]:
    "`n` training steps (stages switched as `fit` does); the mean loss of each."
    out = []
    for _ in range(n):
        tr._apply_stage(tr.step)
        assert tr.train_step(*next(batches)), f'non-finite step {tr.step} of {tr.cfg.recipe}'
        out.append(tr.res['loss'].float().mean().item())
    return out

@pytest.fixture(autouse=True, scope='module')
def fresh_state_after():
    "Leave no bf16 accelerate state or compiled graphs behind for the tests that follow in the same process."
    yield
    from accelerate.state import AcceleratorState
    AcceleratorState._reset_state(True); torch._dynamo.reset()

@pytest.fixture
def cheap_compile(monkeypatch):
    "Compile with dynamo's `eager` backend: graphs, guards and graph breaks are dynamo's, without inductor's C++ build."
    monkeypatch.setitem(dit.COMPILE_DEFAULTS, 'backend', 'eager')

@pytest.mark.slow
@pytest.mark.parametrize('setting', list(SETTINGS))
@pytest.mark.parametrize('recipe', ALL)
def test_recipe_trains_and_samples(recipe, setting, tmp_path, cheap_compile):
    "A few steps of `recipe` with `setting`, finite, then samples from the EMA under the same precision."
    tr = trainer(tiny(recipe, tmp_path / 'run', **SETTINGS[setting]))
    b = tr.batches()
    losses = steps(tr, 4, b)
    assert all(map(torch.isfinite, torch.tensor(losses))), losses
    compiled = [m._compiled_call_impl is not None for m in tr.net.modules() if isinstance(m, DiTBlock)]
    assert compiled and all(compiled) == ('compile' in setting), compiled
    assert tr.accelerator.mixed_precision == ('bf16' if 'bf16' in setting else 'no')
    x, y = tr.generate(2, seed=0)                          # under the run's autocast, as the callbacks sample
    assert x.shape == (2, *tr.dataset.image_shape) and torch.isfinite(x).all()

@pytest.mark.slow
def test_autocast_in_force_under_compile(tmp_path):
    """The trainer's autocast reaches inside the blocks compiled by inductor: with bf16 the block stack moves off its
    eager fp32 result by bf16's rounding, without it the two agree to fp32's."""
    x, t, y = torch.randn(4, 3, 8, 8), torch.rand(4) * 999, torch.arange(4)
    err = {}
    for mp in ('bf16', 'no'):
        tr = trainer(tiny('dit', tmp_path / mp, mixed_precision=mp, compile=True))
        torch.manual_seed(0)
        with torch.no_grad():
            for p in tr.net.parameters(): p.normal_(0, 0.05)   # away from adaLN-Zero, whose blocks are the identity
        ref = copy.deepcopy(tr.net).eval()
        for m in ref.modules(): m._compiled_call_impl = None   # the same weights, eager
        tr.net.eval(); L = range(len(ref.blocks))
        with torch.no_grad():
            h, c = ref.embed(x, t, y)
            with tr.accelerator.autocast(): got = tr.net.run_blocks(h, c, L)     # as `train_step` runs the model
            err[mp] = (got.float() - ref.run_blocks(h, c, L)).abs().max().item()
        assert all(b._compiled_call_impl is not None for b in tr.net.blocks)
    assert err['bf16'] > 1e-4 and err['no'] < 1e-5, err   # bf16: 7e-4 here; with autocast lost inside compiled code 1e-7

@pytest.mark.slow
@pytest.mark.parametrize('recipe', ['dit', 'tread', 'maskdit', 'dydit'])
def test_grad_checkpointing_every_plan(recipe, tmp_path):
    "Checkpointing recomputes every block (the gated blocks of DyDiT and MaskDiT's decoder too) with the same gradients."
    grads, starts = {}, {}
    for gc in (False, True):
        tr = trainer(tiny(recipe, tmp_path / str(gc), grad_checkpointing=gc, label_dropout=0.0))
        tr.net.train()
        # every form of a block (DiTBlock.forward, DyDiT's gated_block, MaskDiT's decoder) starts with its adaLN
        ada = [m.adaLN_modulation for m in tr.net.modules() if isinstance(m, DiTBlock)]
        n = [0]
        hooks = [m.register_forward_pre_hook(lambda *_: n.__setitem__(0, n[0] + 1)) for m in ada]
        x, y = next(tr.batches())
        torch.manual_seed(3)
        t, _ = tr.sampler.sample(x.shape[0], x.device, x0=x)
        res = tr.objective.loss(tr.model, x, y, t, torch.randn_like(x), plan=tr.plan, step=0)
        forward = n[0]; res['loss'].mean().backward()
        starts[gc] = (forward, n[0] - forward)
        grads[gc] = [p.grad.clone() if p.grad is not None else None for p in tr.net.parameters()]
        for h in hooks: h.remove()
    assert starts[False][1] == 0 and starts[True][1] == starts[True][0] > 0, starts    # each block ran again
    for a, c in zip(grads[False], grads[True]):
        assert (a is None) == (c is None) and (a is None or torch.allclose(a, c, atol=1e-6)), recipe

@pytest.mark.slow
@pytest.mark.parametrize('recipe', ALL)
def test_no_recompiles_after_warmup(recipe, tmp_path, cheap_compile):
    "After 4 warm-up steps and one sampling pass, 50 steps (a stage switch among them) and CFG sampling compile nothing."
    tr = trainer(tiny(recipe, tmp_path / 'run', steps=60, switch_at=-30, compile=True, sample_cfg=2.0))
    tr.ema.model.compile_blocks()                           # sampling compiled too: eval mode, CFG's doubled batch
    b = tr.batches()
    steps(tr, 4, b); tr.generate(2, seed=0)
    warm = counters['stats']['unique_graphs']               # one per (block kind, grad mode) here; a recompile adds one
    assert warm > 0, 'nothing was compiled'
    steps(tr, 50, b); tr.generate(3, seed=1)
    after = counters['stats']['unique_graphs']
    assert tr.step == 54 and (not tr.cfg.stages or tr.stage == 30), (tr.step, tr.stage)
    assert after == warm, f'{recipe}: {after - warm} graphs compiled after warm-up (TORCH_LOGS=recompiles says why)'
    assert not counters['graph_break'], dict(counters['graph_break'])

@pytest.mark.slow
@pytest.mark.parametrize('recipe', ['tread-f', 'maskdit-ft', 'dydit'])   # DiT's own: test_autocast_in_force_under_compile
def test_inductor_bf16(recipe, tmp_path):
    "Each kind of block (DiT's, MaskDiT's decoder, DyDiT's gated one) through inductor's code under bf16, stages included."
    tr = trainer(tiny(recipe, tmp_path / 'run', **SETTINGS['bf16+compile']))
    b = tr.batches()
    losses = steps(tr, 4, b)
    assert all(map(torch.isfinite, torch.tensor(losses))), losses
    x, y = tr.generate(2, seed=0)
    assert torch.isfinite(x).all()
