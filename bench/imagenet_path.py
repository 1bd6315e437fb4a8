"""Throughput of the ImageNet path on this machine: `data encode` (images/s), `sample` (samples/s and s per network
evaluation) and the VAE decode, measured in one run, in process (no launcher start-up), on random weights of the
real architectures (SD-VAE's AutoencoderKL configuration, DiT sizes), so the cost is the real one and nothing downloads.

    python bench/imagenet_path.py                # CPU defaults (a few minutes on 2 cores)
    python bench/imagenet_path.py --image-size 256 --encode-n 64 --models DiT-XL/2 --sample-steps 20   # on a GPU
"""
import argparse, json, sys, tempfile, time
from pathlib import Path
import numpy as np
import torch
sys.path.insert(0, str(Path(__file__).parent))
from common import timed, write_result

def sd_vae_random(seed=0):
    "Stable Diffusion's VAE architecture (the config of stabilityai/sd-vae-ft-ema) with random weights."
    from diffusers import AutoencoderKL
    torch.manual_seed(seed)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
                        down_block_types=('DownEncoderBlock2D',) * 4, up_block_types=('UpDecoderBlock2D',) * 4,
                        layers_per_block=2, norm_num_groups=32, sample_size=256)
    vae.register_to_config(_name_or_path='sd-vae architecture, random weights')
    return vae.eval().requires_grad_(False)

def make_folder(root, n, size):
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(n):
        c = root / f'n{i % 10:08d}'; c.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size + size // 4, size + size // 3, 3), dtype=np.uint8)).save(c / f'{i}.png')

def bench_encode(vae, name, size, n, batch, device):
    from fastdit_lab.latents import ImageFiles, encode_dataset
    with tempfile.TemporaryDirectory() as d:
        d = Path(d); make_folder(d / 'imgs', n, size)
        ds = ImageFiles(d / 'imgs', size)
        t = time.perf_counter()
        encode_dataset(ds, vae, d / 'lat', batch_size=batch, device=device, shard_size=max(batch, n // 4), progress=False)
        dt = time.perf_counter() - t
    return dict(vae=name, image_size=size, images=n, flips=True, batch_size=batch, seconds=round(dt, 2),
                images_per_s=round(n / dt, 3), encodes_per_s=round(2 * n / dt, 3))

def bench_sample(model_name, latent, preset, steps, n, batch, device):
    from fastdit_lab.models.dit import make_model
    from fastdit_lab.diffusion.objectives import EpsilonObjective, VelocityObjective
    from fastdit_lab.diffusion.process import DDPM, Flow
    from fastdit_lab.diffusion.sampling import preset_kwargs
    from fastdit_lab.samples import write_samples
    torch.manual_seed(0)
    ddpm = preset == 'dit'
    net = make_model(model_name, input_size=latent[1], in_channels=latent[0], num_classes=1000, learn_sigma=ddpm).to(device).eval()
    for p in net.parameters(): p.data.normal_(0, 0.02)
    obj = EpsilonObjective(DDPM(), learn_sigma=True) if ddpm else VelocityObjective(Flow())
    kw = preset_kwargs(preset, obj.process, steps=steps)
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        out = write_samples(net, obj, Path(d) / 's.npz', n, 1000, latent, batch_size=batch, sampler=kw, device=device,
                            decode=lambda z: z[:, :3], progress=False)                 # decode timed separately
        dt = time.perf_counter() - t
        nfe = json.loads(out.with_suffix('.json').read_text())['run']['nfe_mean']
    evals = nfe * (2 if kw['cfg_scale'] != 1 else 1)                                    # CFG doubles each batch
    return dict(model=model_name, latent_shape=list(latent), preset=preset, steps=steps, nfe_per_sample=nfe,
                cfg_scale=kw['cfg_scale'], samples=n, batch_size=batch, seconds=round(dt, 2), samples_per_s=round(n / dt, 3),
                ms_per_network_image=round(1000 * dt / (n * evals), 3))

def bench_decode(vae, name, latent, n, batch, device):
    z = torch.randn(n, *latent)
    p = next(vae.parameters())
    def decode_all():
        with torch.no_grad():
            for i in range(0, n, batch): vae.decode(z[i:i + batch].to(p.device, p.dtype)).sample
    dt = timed(decode_all, 1, p.device)                 # the GPU's queue drained before the clock stops
    return dict(vae=name, latent_shape=list(latent), images=n, seconds=round(dt, 2), images_per_s=round(n / dt, 3))

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--image-size', type=int, default=256); ap.add_argument('--encode-n', type=int, default=8)
    ap.add_argument('--tiny-n', type=int, default=200)
    ap.add_argument('--models', default='DiT-T/4,DiT-S/2'); ap.add_argument('--sample-n', type=int, default=16)
    ap.add_argument('--sample-steps', type=int, default=4); ap.add_argument('--batch-size', type=int, default=8)
    a = ap.parse_args()
    import os
    load0 = os.getloadavg()                 # the machine may be shared: other work slows every number below
    dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    from fastdit_lab.latents import tiny_vae
    sd, tiny = sd_vae_random().to(dev), tiny_vae().to(dev)
    lat = (4, a.image_size // 8, a.image_size // 8)
    res = dict(encode=[bench_encode(sd, 'sd-vae architecture (random weights)', a.image_size, a.encode_n, a.batch_size, dev),
                       bench_encode(tiny, 'tiny_vae (the tests\' VAE)', 32, a.tiny_n, 16, dev)],
               decode=[bench_decode(sd, 'sd-vae architecture (random weights)', lat, a.encode_n, a.batch_size, dev)],
               sample=[bench_sample(m, lat, preset, a.sample_steps, a.sample_n, a.batch_size, dev)
                       for m in a.models.split(',') for preset in ('dit', 'sit-sde')])
    for k, rows in res.items():
        for r in rows: print(k, r)
    print(write_result('imagenet_path', vars(a), res, load_average=dict(start=load0, end=os.getloadavg()),
                       note='in process (no launcher start-up); random weights of the named architectures'))
