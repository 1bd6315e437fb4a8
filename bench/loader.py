"""Latents per second that the training loader delivers from a latent folder (memory-mapped moments, a posterior
sample and a random flip per item): `data.make_loader`, the loader training uses, side by side in one process with
the DataLoader training used before it (an `EpochSampler` batch sampler, items collated), fed by the dataset's
batched `__getitems__` and one `__getitem__` at a time, for a few worker counts.

The folder is written directly in the encoded format by `latents.write_random_latents` (random moments of the
given shape and dtype): the loader's work depends on the shape and dtype, not on what the latents encode, and
encoding 4096 images through the tiny VAE took 454 s here. 32×32×4 is ImageNet-256 under the SD VAE. The target is
20 000 latents/s: DiT-XL/2 on one H100 needs ~700 img/s at its physical limit, so such a loader is never its bottleneck.

    python bench/loader.py --n 4096 --batch 256 --workers 0 1 2
"""
import argparse, os, statistics, sys, tempfile, time
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent))
from common import write_result
from fastdit_lab.data import EpochSampler, make_loader
from fastdit_lab.latents import LatentDataset, write_random_latents

class Items(torch.utils.data.Dataset):
    "`ds`'s items one `__getitem__` at a time (no batched fetch): the per-item path."
    def __init__(self, ds): self.ds = ds
    def __len__(self): return len(self.ds)
    def __getitem__(self, i): return self.ds[i]

def items_loader(ds, batch:int, workers:int):
    "The loader training used before `make_loader`: a DataLoader over the items with an `EpochSampler` batch sampler."
    dl = torch.utils.data.DataLoader(ds, batch_sampler=EpochSampler(len(ds), batch, 0, 1, 0, 0), num_workers=workers,
                                     generator=torch.Generator().manual_seed(0), pin_memory=torch.cuda.is_available(),
                                     persistent_workers=workers > 0)
    return to_device(iter(dl))

def to_device(batches):
    "On a GPU, each batch copied there as `make_loader`'s are, so that every loader compared does the same work."
    if not torch.cuda.is_available(): yield from batches; return
    for x, y in batches: yield x.to('cuda', non_blocking=True), y.to('cuda', non_blocking=True)

def step_loader(ds, batch:int, workers:int):
    "The loader training uses: `make_loader` on the device training would use."
    return make_loader(ds, EpochSampler(len(ds), batch, 0, 1, 0, 0), 'cuda' if torch.cuda.is_available() else 'cpu',
                       workers, seed=0)

def rate(make, ds, batch:int, workers:int, batches:int) -> float:
    "Latents/s over `batches` batches after the first two (workers started, their queue filled once)."
    it = make(ds, batch, workers); next(it); x, _ = next(it)
    if x.is_cuda: torch.cuda.synchronize()                 # the copies already in flight are not this round's
    t0 = time.perf_counter()
    for _ in range(batches): x, y = next(it)
    if x.is_cuda: torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    assert x.shape == (batch, 4, 32, 32) and y.shape == (batch,), (x.shape, y.shape)
    del it
    return batches * batch / secs

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=4096, help='latents in the folder')
    p.add_argument('--batch', type=int, default=256)
    p.add_argument('--batches', type=int, default=40, help='timed batches per round')
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--workers', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--dtype', default='float16', choices=['float16', 'float32'])
    a = p.parse_args()
    if a.n < a.batch or a.batch < 1 or a.batches < 1 or a.rounds < 1 or min(a.workers) < 0:
        print(f'error: need n >= batch >= 1, batches >= 1, rounds >= 1 and workers >= 0, got n {a.n}, batch {a.batch}, '
              f'batches {a.batches}, rounds {a.rounds}, workers {a.workers}', file=sys.stderr); sys.exit(2)
    load_before = os.getloadavg()           # the machine is shared: what else ran is part of the figure
    paths = dict(per_item=lambda ds, b, w: items_loader(Items(ds), b, w), items_batched=items_loader, make_loader=step_loader)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        folder = write_random_latents(Path(tmp) / 'lat', a.n, (4, 32, 32), dtype=a.dtype)
        write_s = time.perf_counter() - t0
        ds = LatentDataset(folder)                  # flips and posterior samples on, as the benchmark's subject
        rates = {(k, w): [] for k in paths for w in a.workers}
        for r in range(a.rounds):                   # interleaved, alternating order: drift hits every setting alike
            order = list(rates) if r % 2 == 0 else list(rates)[::-1]
            for k, w in order: rates[k, w].append(rate(paths[k], ds, a.batch, w, a.batches))
    res = {f'{k} workers={w}': dict(latents_per_s=v, median_latents_per_s=statistics.median(v)) for (k, w), v in rates.items()}
    for w in a.workers:
        r = {k: res[f'{k} workers={w}']['median_latents_per_s'] for k in paths}
        res[f'ratio workers={w}'] = {f'make_loader/{k}': r['make_loader'] / r[k] for k in paths if k != 'make_loader'}
        print(f"workers={w}: make_loader {r['make_loader']:.0f} latents/s; DataLoader over items, batched fetch "
              f"{r['items_batched']:.0f} ({r['make_loader'] / r['items_batched']:.2f}×), one item at a time "
              f"{r['per_item']:.0f} ({r['make_loader'] / r['per_item']:.2f}×)", flush=True)
    print(f'folder written in {write_s:.1f} s')
    print('wrote', write_result('loader', dict(vars(a), latent='32x32x4 moments', flip=True, posterior='sample',
                                               device='cuda' if torch.cuda.is_available() else 'cpu',
                                               folder_write_seconds=write_s, target_latents_per_s=20000,
                                               load_average_before=load_before, load_average_after=os.getloadavg()), res))

if __name__ == '__main__': main()
