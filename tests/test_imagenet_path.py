"""The ImageNet path end to end on CPU, with real two-process DDP: an ImageNet-layout folder -> `data encode` (killed
once, resumed) -> training -> `sample --n 256 --out` (killed once, resumed; the same bytes as one process) ->
`eval --ref` against a reference batch made from the folder. Small everywhere: 200 images of 40x48, a tiny random
VAE saved as a diffusers folder, a 2-block DiT, a random TF-Inception graph in pytorch-fid's weight layout."""
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
import torch
from conftest import free_port, run_cli

pytestmark = pytest.mark.slow                     # the ImageNet path end to end on two processes: minutes

THREADS = {'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}      # the same kernels in every process: bit-identical sums


def accelerate_cmd(*args):
    accel = shutil.which('accelerate', path=os.path.dirname(sys.executable)) or shutil.which('accelerate')
    return [accel, 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1', '--mixed_precision', 'no',
            '--dynamo_backend', 'no', '--main_process_port', str(free_port()), '-m', 'fastdit_lab.cli', *map(str, args)]

def env():
    return {**os.environ, **THREADS, 'ACCELERATE_USE_CPU': 'true', 'FASTDIT_CACHE': os.environ.get('FASTDIT_CACHE', '')}

def launch(*args, cwd, timeout=600):
    "`fastdit ARGS` on two CPU processes; the completed process."
    r = subprocess.run(accelerate_cmd(*args), capture_output=True, text=True, timeout=timeout, env=env(), cwd=cwd)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-4000:]
    return r

def kill_tree(pid):
    "SIGKILL a process and all its descendants (the launcher and its workers, which sit in sessions of their own)."
    import psutil
    try: procs = psutil.Process(pid).children(recursive=True) + [psutil.Process(pid)]
    except psutil.NoSuchProcess: return
    for p in procs:
        try: p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess: pass
    psutil.wait_procs(procs, timeout=30)

def launch_and_kill(args, cwd, ready, timeout=300):
    "Start `fastdit ARGS` on two processes and SIGKILL all of them as soon as `ready()` is true."
    p = subprocess.Popen(accelerate_cmd(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env(), cwd=cwd)
    t0 = time.time()
    try:
        while not ready():
            assert p.poll() is None, f'finished before it could be killed: {p.stderr.read()[-3000:]}'
            assert time.time() - t0 < timeout, 'never reached the point to kill it'
            time.sleep(0.01)
    finally: kill_tree(p.pid)

def make_folder(root: Path, n=200):
    "An ImageNet-layout folder of `n` 40x48 PNGs (coloured shapes; class folders n00000000..) and a tiny VAE on disk."
    from PIL import Image
    from fastdit_lab.data import Shapes
    from fastdit_lab.latents import tiny_vae
    ds = Shapes(n, image_size=40, seed=0)
    for i in range(n):
        c = root / 'train' / f'n{ds.label(i):08d}'; c.mkdir(parents=True, exist_ok=True)
        im = ds.image_u8(i)
        Image.fromarray(np.concatenate([im, im[:, :8]], 1)).save(c / f'{i:05d}.png')    # not square: the crop matters
    tiny_vae().save_pretrained(root / 'vae')

def official_dit_state_dict(depth, D, p, C, num_classes, size, seed=0):
    "Random weights under the key layout and shapes of facebookresearch/DiT's models.py (learned sigma: 2C outputs)."
    g, T = torch.Generator().manual_seed(seed), (size // p) ** 2
    shapes = {'pos_embed': (1, T, D), 'x_embedder.proj.weight': (D, C, p, p), 'x_embedder.proj.bias': (D,),
              't_embedder.mlp.0.weight': (D, 256), 't_embedder.mlp.0.bias': (D,), 't_embedder.mlp.2.weight': (D, D),
              't_embedder.mlp.2.bias': (D,), 'y_embedder.embedding_table.weight': (num_classes + 1, D),
              'final_layer.linear.weight': (p * p * 2 * C, D), 'final_layer.linear.bias': (p * p * 2 * C,),
              'final_layer.adaLN_modulation.1.weight': (2 * D, D), 'final_layer.adaLN_modulation.1.bias': (2 * D,)}
    for i in range(depth):
        shapes.update({f'blocks.{i}.attn.qkv.weight': (3 * D, D), f'blocks.{i}.attn.qkv.bias': (3 * D,),
                       f'blocks.{i}.attn.proj.weight': (D, D), f'blocks.{i}.attn.proj.bias': (D,),
                       f'blocks.{i}.mlp.fc1.weight': (4 * D, D), f'blocks.{i}.mlp.fc1.bias': (4 * D,),
                       f'blocks.{i}.mlp.fc2.weight': (D, 4 * D), f'blocks.{i}.mlp.fc2.bias': (D,),
                       f'blocks.{i}.adaLN_modulation.1.weight': (6 * D, D), f'blocks.{i}.adaLN_modulation.1.bias': (6 * D,)})
    return {k: torch.randn(s, generator=g) * 0.05 for k, s in shapes.items()}


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp('imagenet')
    make_folder(root)
    return root

@pytest.fixture(scope='module')
def ref_latents(work):
    "The folder encoded in this process, on one thread (the launched processes' kernels), in one go."
    from fastdit_lab.latents import ImageFiles, encode_dataset, load_vae
    threads = torch.get_num_threads(); torch.set_num_threads(1)
    try: return encode_dataset(ImageFiles(work / 'train', 32), load_vae(work / 'vae'), work / 'lat_ref', batch_size=4,
                               shard_size=8, progress=False)
    finally: torch.set_num_threads(threads)


def test_encode_train_sample_eval(work, ref_latents):
    t_start = time.time()
    # 1. encode on two processes, killed once after a few shards, then resumed
    enc = ['data', 'encode', 'train', 'lat', '--vae', 'vae', '--image-size', '32', '--batch-size', '4', '--shard-size', '8',
           '--num-workers', '0']
    shards = work / 'lat' / 'shards'
    launch_and_kill(enc, work, lambda: shards.is_dir() and len(list(shards.glob('*.json'))) >= 3)
    done = len(list(shards.glob('*.json')))
    assert not (work / 'lat' / 'meta.json').exists() and 3 <= done < 25
    r = launch(*enc, cwd=work)
    assert 'on 2 process(es)' in r.stdout                                  # a real two-process group, not two singles
    assert f'({25 - done} of 25 shards this run' in r.stdout, r.stdout      # finished shards were not encoded again
    for f in ('moments.npy', 'moments_flip.npy', 'labels.npy'):            # = one uninterrupted process, byte for byte
        assert np.array_equal(np.load(work / 'lat' / f), np.load(ref_latents / f)), f
    meta = json.loads((work / 'lat' / 'meta.json').read_text())
    assert (meta['count'], meta['latent_shape'], meta['num_classes']) == (200, [4, 16, 16], 10)
    r = run_cli(*enc[:-2], '--image-size', '16', cwd=work)                # another plan on the same folder: refused
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and 'other settings (' in r.stderr, r.stderr

    # 2. train on the latents on two processes
    launch('train', '--recipe', 'sit', '--model', 'DiT-T/4', '--model-args', '{"depth": 2}', '--data', 'latents',
           '--data-dir', 'lat', '--steps', '8', '--batch-size', '16', '--log-every', '4', '--ckpt-every', '8',
           '--sample-n', '10', '--sample-steps', '2', '--run-dir', 'run', cwd=work)
    from fastdit_lab.train.store import RunStore
    with RunStore(work / 'run' / 'store.sqlite') as st: assert st.meta()['num_processes'] == 2
    assert (work / 'run' / 'samples' / 'final.png').exists()              # a grid of decoded latents

    # 3. 256 samples on two processes, killed once, resumed; one process gives the same bytes
    smp = ['sample', 'run', '--n', '256', '--preset', 'sit-sde', '--steps', '6', '--batch-size', '8']
    parts = work / '.s2.npz.parts'
    launch_and_kill(smp + ['--out', 's2.npz'], work, lambda: parts.is_dir() and len(list(parts.glob('batch_*.npz'))) >= 4)
    kept = len(list(parts.glob('batch_*.npz')))
    assert not (work / 's2.npz').exists() and 4 <= kept < 32
    r = launch(*smp, '--out', 's2.npz', cwd=work)
    assert 'on 2 process(es)' in r.stdout and f'({32 - kept} of 32 batches this run)' in r.stdout, r.stdout
    r = run_cli(*smp, '--out', 's1.npz', cwd=work, env=THREADS)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (work / 's1.npz').read_bytes() == (work / 's2.npz').read_bytes()
    with np.load(work / 's2.npz') as z:
        assert z['arr_0'].shape == (256, 32, 32, 3) and z['arr_0'].dtype == np.uint8
        assert np.array_equal(z['arr_1'], np.arange(256) % 10)
    side = json.loads((work / 's2.json').read_text())
    assert side['spec']['preset'] == 'sit-sde' and side['spec']['sampler']['cfg_scale'] == 1.5
    assert side['spec']['sampler']['guide_channels'] == 3 and side['run']['world_size'] == 2

    # 4. a reference batch from the folder, then the ADM metrics with a random Inception in pytorch-fid's layout
    from fastdit_lab.inception import random_tf_inception
    torch.save(random_tf_inception().state_dict(), work / 'inception.pth')
    r = run_cli('eval', '--make-ref', 'train', 'ref.npz', '--image-size', '32', '--n', '16', cwd=work)
    assert r.returncode == 0, r.stderr[-3000:]
    # the distance through symmetric eigenvalues (06b checks both methods against the closed form); scipy's sqrtm takes
    # 20 s per 2048-d matrix on one thread here, twice (FID and sFID)
    r = run_cli('eval', 's2.npz', '--ref', 'ref.npz', '--inception-weights', 'inception.pth', '--n', '16', '--json', 'res.json',
                '--fid-method', 'eigh', cwd=work, env={**THREADS, 'FASTDIT_CACHE': str(work / 'cache')})
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((work / 'res.json').read_text())
    assert set(res['metrics']) == {'fid', 'sfid', 'inception_score', 'precision', 'recall'}
    assert all(np.isfinite(v) for v in res['metrics'].values()) and res['metrics']['fid'] > 0
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith('FID ') and 'IS ' in lines[0] and 'precision' in lines[0]
    assert '16 samples of run step 8: sde 6 steps, CFG 1.5 on channels 0-2, preset sit-sde, seed 0' in lines[1], lines
    assert 'against 16 reference images' in lines[2] and 'NOT the published weights' in lines[3]
    assert lines[3].endswith('Fréchet distance by symmetric eigenvalues') and res['fid_method'] == 'eigh', lines[3]
    print(f'end-to-end: {time.time() - t_start:.0f} s')


def test_official_dit_checkpoint_samples_with_the_dit_preset(ref_latents, tmp_path):
    "A checkpoint in the published DiT layout (random weights) loads through --init-from and samples with the DiT preset."
    lat = ref_latents
    sd = official_dit_state_dict(depth=6, D=192, p=4, C=4, num_classes=10, size=16)
    torch.save(sd, tmp_path / 'DiT-T-4-16x16.pt')                          # the released files are bare state dicts
    r = run_cli('train', '--recipe', 'dit', '--model', 'DiT-T/4', '--data', 'latents', '--data-dir', lat, '--steps', '1',
                '--lr', '1e-12', '--batch-size', '8', '--ckpt-every', '1', '--sample-n', '2', '--sample-steps', '2',
                '--init-from', tmp_path / 'DiT-T-4-16x16.pt', '--run-dir', tmp_path / 'run', env=THREADS)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f'{len(sd)} of {len(sd)} tensors loaded, 0 new' in r.stdout, r.stdout[-2000:]
    from fastdit_lab.train.checkpoint import load_latest
    ema = load_latest(tmp_path / 'run' / 'checkpoints')['ema']
    for k, v in sd.items(): assert torch.allclose(ema[k], v, rtol=1e-6, atol=1e-9), k   # lr 1e-12: the official weights
    r = run_cli('sample', tmp_path / 'run', '--n', '4', '--preset', 'dit', '--out', tmp_path / 'dit.npz', env=THREADS)
    assert r.returncode == 0, r.stderr[-3000:]
    side = json.loads((tmp_path / 'dit.json').read_text())
    assert side['spec']['sampler'] == {'method': 'ddpm', 'steps': 250, 'cfg_scale': 1.5, 'guide_channels': 3}
    assert side['run']['nfe_mean'] == 250
    with np.load(tmp_path / 'dit.npz') as z: assert z['arr_0'].shape == (4, 32, 32, 3)
