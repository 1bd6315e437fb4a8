"Trains a tiny recipe under `accelerate launch` and writes, per rank, the world size and a checksum of the weights."
import hashlib, json, sys
from pathlib import Path
import torch
from fastdit_lab.train.config import resolve_config
from fastdit_lab.train.trainer import Trainer

run_dir = Path(sys.argv[1])
cfg = resolve_config('sit', model='DiT-T/4', image_size=16, steps=8, batch_size=8, log_every=4, ckpt_every=8, sample_n=10,
                     sample_steps=2, sampler={'name': 'iddpm_importance', 'n_bins': 4, 'history': 2}, run_dir=str(run_dir))
tr = Trainer(cfg, quiet=True).fit()
acc = tr.accelerator
digest = lambda m: hashlib.sha256(b''.join(p.detach().cpu().numpy().tobytes() for p in m.parameters())).hexdigest()
first = tr.batches(); x, y = next(first)
(run_dir / f'rank{acc.process_index}.json').write_text(json.dumps(dict(
    world=acc.num_processes, rank=acc.process_index, model=digest(tr.net), ema=digest(tr.ema),
    sampler=tr.sampler.losses.tolist(), first_labels=y.tolist())))
acc.wait_for_everyone(); acc.end_training()
