"Trains a tiny recipe under `accelerate launch` and writes, per rank, the world size and checksums of what must agree."
import hashlib, json, sys
from pathlib import Path
import torch
import fastdit_lab.all                  # every method registers its recipes, models, plans, samplers and losses
from fastdit_lab.train.config import resolve_config
from fastdit_lab.train.trainer import Trainer

run_dir, mode = Path(sys.argv[1]), (sys.argv[2] if len(sys.argv) > 2 else 'importance')
samplers = {'importance': {'name': 'iddpm_importance', 'n_bins': 4, 'history': 2},
            'adaptive': {'name': 'adaptive', 'policy': 'beta', 'every': 4, 'sweep': 6, 'n_select': 2}}
common = dict(image_size=16, steps=8, batch_size=8, log_every=4, ckpt_every=8, sample_n=10, sample_steps=2, run_dir=str(run_dir))
if mode == 'maskdit':      # masked steps, then the unmasking fine-tune: the mask token gets no real gradient there
    cfg = resolve_config('maskdit-ft', model='MaskDiT-T/4', stages=[{'at_step': -4, 'plan': {'name': 'maskdit', 'mask_ratio': 0.0}}],
                         routing_every=4, **common)
elif mode == 'dydit':      # two forwards of the DDP model per step (dynamic + complete), then stage 2 with one
    cfg = resolve_config('dydit', model='DyDiT-T/4', stages=[{'at_step': 4, 'losses': [{'name': 'flops', 'target': 0.5}]}],
                         **common)
elif mode in ('fsdp', 'fsdp-ddp'):   # the same SiT run sharded (FSDP2) and replicated (DDP), checkpoints every 4 steps
    cfg = resolve_config('sit', model='DiT-T/4', fsdp=mode == 'fsdp', **dict(common, ckpt_every=4))
elif mode == 'fsdp-maskdit':
    cfg = resolve_config('maskdit', model='MaskDiT-T/4', fsdp=True, routing_every=4, **common)
else:
    cfg = resolve_config('sit', model='DiT-T/4', sampler=samplers[mode], **common,
                         instrument={'name': 'grad_variance', 'every': 4, 'n_bins': 2, 'per_bin': 2} if mode == 'adaptive' else None)
tr = Trainer(cfg, quiet=True).fit()
acc = tr.accelerator
digest = lambda ps: hashlib.sha256(b''.join(p.detach().cpu().numpy().tobytes() for p in ps)).hexdigest()
first = tr.batches(); x, y = next(first)
if mode.startswith('fsdp'):       # how the weights are held on this rank; the checkpoints are compared by the test
    w = tr.net.blocks[0].attn.qkv.weight
    local = w.to_local() if hasattr(w, 'to_local') else w
    out = dict(world=acc.num_processes, rank=acc.process_index, sharded=tr.sharded, full_shape=list(w.shape),
               local_shape=list(local.shape), local=digest([local]), first_labels=y.tolist())
    if mode == 'fsdp-maskdit':
        d = tr.net.decoder_blocks[0].attn.qkv.weight
        out.update(decoder_full_shape=list(d.shape), decoder_local_shape=list(d.to_local().shape))
    (run_dir / f'rank{acc.process_index}.json').write_text(json.dumps(out))
    acc.wait_for_everyone(); acc.end_training(); sys.exit()
out = dict(world=acc.num_processes, rank=acc.process_index, model=digest(tr.net.parameters()), ema=digest(tr.ema.model.parameters()),
           first_labels=y.tolist())
if mode == 'importance': out['sampler'] = tr.sampler.losses.tolist()
elif mode == 'maskdit': out['mask_token'] = digest([tr.net.mask_token])
elif mode == 'dydit': out['routers'] = digest(tr.net.routers.parameters())
else:
    out['sampler'] = digest(tr.sampler.policy.parameters()); out['selected'] = tr.sampler.selected
    cb = next(c for c in tr.callbacks if type(c).__name__ == 'GradVarianceCallback')
    out['grad_var'] = [float(v) for v in cb.measure(tr)['grad_var']]           # reduced over ranks: the same everywhere
(run_dir / f'rank{acc.process_index}.json').write_text(json.dumps(out))
acc.wait_for_everyone(); acc.end_training()
