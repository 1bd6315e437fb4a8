"""Latents per second that the training loader delivers from an encoded latent folder (memory-mapped moments, a
posterior sample and a random flip per item), built the way `Trainer.batches` builds it, for a few worker counts.

The folder is made here: random 64-px images through a tiny VAE give 32×32×4 latents, the shape of ImageNet-256 under
the SD VAE (the loader's work depends on that shape, not on what the latents encode). The target is 20 000 latents/s
(DiT-XL/2 on one H100 needs ~700 img/s at its physical limit, so such a loader is never the bottleneck).

    python bench/loader.py --n 4096 --batch 256 --workers 0 2
"""
import argparse, sys, tempfile, time
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent))
from common import write_result
from fastdit_lab.data import EpochSampler
from fastdit_lab.latents import LatentDataset, encode_dataset, tiny_vae

class RandomImages(torch.utils.data.Dataset):
    "`n` fixed random images [3, 64, 64] in [-1, 1] with labels `i % 1000`."
    def __init__(self, n:int, size:int=64, seed:int=0):
        self.n, self.size, self.seed, self.name, self.hflip = n, size, seed, f'random{n}', False
        self.num_classes, self.image_shape = 1000, (3, size, size)
    def __len__(self): return self.n
    def __getitem__(self, i):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        return torch.rand(3, self.size, self.size, generator=g) * 2 - 1, i % 1000

def rate(ds, batch:int, workers:int, batches:int) -> float:
    "Latents/s over `batches` batches after one, through the DataLoader `Trainer.batches` makes (CPU: no pinning)."
    sampler = EpochSampler(len(ds), batch, 0, 1, 0, 0)
    dl = torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=workers, generator=torch.Generator().manual_seed(0),
                                     pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0)
    it = iter(dl); next(it)
    t0 = time.perf_counter()
    for _ in range(batches): x, y = next(it)
    secs = time.perf_counter() - t0
    assert x.shape == (batch, 4, 32, 32), x.shape
    return batches * batch / secs

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=4096, help='latents in the folder')
    p.add_argument('--batch', type=int, default=256)
    p.add_argument('--batches', type=int, default=10, help='timed batches per round')
    p.add_argument('--rounds', type=int, default=3)
    p.add_argument('--workers', type=int, nargs='+', default=[0, 2])
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        folder = encode_dataset(RandomImages(a.n), tiny_vae(), Path(tmp) / 'lat', batch_size=256, progress=False)
        encode_s = time.perf_counter() - t0
        ds = LatentDataset(folder)
        rates = {w: [] for w in a.workers}
        for r in range(a.rounds):
            for w in (a.workers if r % 2 == 0 else a.workers[::-1]): rates[w].append(rate(ds, a.batch, w, a.batches))
    import statistics
    res = {f'workers={w}': dict(latents_per_s=v, median_latents_per_s=statistics.median(v)) for w, v in rates.items()}
    for k, v in res.items(): print(f"{k}: {v['median_latents_per_s']:.0f} latents/s", flush=True)
    print('wrote', write_result('loader', dict(vars(a), latent='32x32x4 float16 moments', flip=True, posterior='sample',
                                               encode_seconds=encode_s, target_latents_per_s=20000), res))

if __name__ == '__main__': main()
