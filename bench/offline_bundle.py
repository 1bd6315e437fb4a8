"""What `bench/gpu_suite.py` needs on a GPU machine with no network, gathered here into one folder to copy beside the
repository there (`bench/gpu_suite.sh` uses it):

- `wheels/`: the packages a CUDA PyTorch image usually lacks (fastcore, diffusers), for that machine's Python;
- `cifar10/cifar10-jpeg.zip`: CIFAR-10 for the evidence race, `--train-per-class` training images of each class and
  all 10 000 test images, so that the folder stays small enough to copy (40 000 training images: 51 MB);
- `cache/features/`: the race's proxy-FID network, trained here once (2000 steps on the full training set, as every
  CIFAR-10 race of this project scores with), so that the GPU machine neither trains it nor scores with another one.

    python bench/offline_bundle.py DIR --cifar PATH/cifar10-jpeg.zip [--python-version 3.12]
"""
import argparse, json, os, subprocess, sys, zipfile
from pathlib import Path

from importlib.metadata import version
# the versions this project's tests ran with here: a newer diffusers may need a newer huggingface_hub than the GPU
# image has, and the bundle installs without dependencies
WHEELS = [f'{name}=={version(name)}' for name in ('fastcore', 'diffusers')]
PLATFORMS = ['manylinux_2_28_x86_64', 'manylinux_2_17_x86_64', 'manylinux2014_x86_64']

def subset_zip(src:Path, dst:Path, per_class:int) -> dict:
    "A copy of the `train/<class>/`, `test/<class>/` zip `src` with the first `per_class` training images of each class."
    kept = {}
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst.with_suffix('.tmp'), 'w', zipfile.ZIP_STORED) as zo:
        for n in sorted(zi.namelist()):
            if n.endswith('/'): continue
            split, cls = n.split('/')[:2]
            if split == 'train' and kept.get(cls, 0) >= per_class: continue
            if split == 'train': kept[cls] = kept.get(cls, 0) + 1
            zo.writestr(n, zi.read(n))
    dst.with_suffix('.tmp').replace(dst)                   # never a half-written zip under the name the suite reads
    return kept

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('dir', type=Path)
    p.add_argument('--cifar', type=Path, required=True, help='the CIFAR-10 zip (train/<class>/, test/<class>/ of JPEGs)')
    p.add_argument('--train-per-class', type=int, default=4000)
    p.add_argument('--python-version', default='3.12', help="the GPU machine's Python")
    a = p.parse_args()
    if not a.cifar.is_file(): p.error(f'{a.cifar} is not a file; pass --cifar pointing at the CIFAR-10 zip')
    (a.dir / 'wheels').mkdir(parents=True, exist_ok=True); (a.dir / 'cifar10').mkdir(exist_ok=True)
    subprocess.run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '--only-binary=:all:', '--python-version',
                    a.python_version, '--implementation', 'cp', *[f'--platform={x}' for x in PLATFORMS],
                    '-d', str(a.dir / 'wheels'), *WHEELS], check=True)
    kept = subset_zip(a.cifar, a.dir / 'cifar10' / 'cifar10-jpeg.zip', a.train_per_class)
    os.environ['FASTDIT_CACHE'] = str((a.dir / 'cache').resolve())
    from fastdit_lab.eval import train_feature_net
    _, info = train_feature_net('cifar10', a.cifar.parent)
    (a.dir / 'bundle.json').write_text(json.dumps(dict(wheels=sorted(f.name for f in (a.dir / 'wheels').iterdir()),
                                                       cifar_train_per_class=kept, feature_net=info), indent=1, default=str))
    size = sum(f.stat().st_size for f in a.dir.rglob('*') if f.is_file())
    print(f'{a.dir}: {size / 2**20:.1f} MiB; feature net test accuracy {info.get("test_accuracy")}')

if __name__ == '__main__': main()
