"""`bench/gpu_suite.py --smoke` runs every part of the GPU suite on the CPU at tiny sizes and writes one JSON with
every part's figures, so the command is known to work before a GPU is ever used."""
import json, os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = {'dense_training', 'ours_vs_diffusers', 'token_plans', 'dydit_sampling', 'memory_per_size', 'evidence_race'}

@pytest.mark.slow
def test_gpu_suite_smoke(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / 'bench' / 'gpu_suite.py'), '--smoke', '--out', str(tmp_path)],
                       capture_output=True, text=True, timeout=900, cwd=ROOT, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (path,) = tmp_path.glob('gpu_suite-smoke-*.json')                  # one JSON
    doc = json.loads(path.read_text())
    assert set(doc['results']) == PARTS and doc['failed'] == [], doc['failed']
    assert all(doc['results'][p]['ok'] for p in PARTS)
    assert {'machine', 'commit', 'settings'} <= set(doc) and doc['settings']['profile'] == 'smoke'
    s = doc['summary']
    for k in ('ours_over_diffusers', 'tread_speedup', 'maskdit_speedup', 'dydit_sampling_speedup', 'dense_img_per_s'):
        assert isinstance(s[k], float) and s[k] > 0, (k, s)
    race = doc['results']['evidence_race']['result']['rows']
    assert [r['arm'] for r in race] == ['dense (DiT)', 'SiT', 'FasterDiT', 'TREAD', 'FasterDiT + TREAD']
    assert all(r['fid'] > 0 and 0 <= r['class_accuracy'] <= 1 for r in race), race
    assert doc['complete'] is True                                      # the last write, after every part

def test_flash_conditions_refuse_what_the_gpu_kernel_refuses():
    "The smoke run's stand-in for the flash-only kernel choice: a call CUDA's flash kernel cannot run fails on the CPU too."
    sys.path.insert(0, str(ROOT / 'bench'))
    import torch
    from gpu_suite import attention_kernel
    q = torch.randn(1, 2, 4, 64)
    cpu, bf16 = torch.device('cpu'), torch.bfloat16
    with attention_kernel(cpu, bf16):
        torch.nn.functional.scaled_dot_product_attention(q.to(bf16), q.to(bf16), q.to(bf16))          # runs
        for bad in (dict(q=q), dict(q=q.to(bf16), attn_mask=torch.ones(4, 4, dtype=torch.bool))):
            args = [bad['q']] * 3
            with pytest.raises(RuntimeError, match='flash attention cannot run this call'):
                torch.nn.functional.scaled_dot_product_attention(*args, attn_mask=bad.get('attn_mask'))
    torch.nn.functional.scaled_dot_product_attention(q, q, q)        # outside it, and at fp32 there is no check
    with attention_kernel(cpu, torch.float32): torch.nn.functional.scaled_dot_product_attention(q, q, q)

def test_offline_bundle_keeps_every_test_image_and_per_class_training_images(tmp_path):
    sys.path.insert(0, str(ROOT / 'bench'))
    import zipfile
    from offline_bundle import subset_zip
    src = tmp_path / 'src.zip'
    with zipfile.ZipFile(src, 'w') as z:
        for split, n in (('train', 5), ('test', 3)):
            for c in ('cat', 'dog'):
                for i in range(n): z.writestr(f'{split}/{c}/{i}.jpg', f'{split}{c}{i}')
    kept = subset_zip(src, tmp_path / 'out.zip', 2)
    names = zipfile.ZipFile(tmp_path / 'out.zip').namelist()
    assert kept == {'cat': 2, 'dog': 2}
    assert sorted(n for n in names if n.startswith('train/')) == ['train/cat/0.jpg', 'train/cat/1.jpg', 'train/dog/0.jpg', 'train/dog/1.jpg']
    assert len([n for n in names if n.startswith('test/')]) == 6
    assert zipfile.ZipFile(tmp_path / 'out.zip').read('train/dog/1.jpg') == b'traindog1'

def test_gpu_suite_sh_refuses_a_folder_that_is_not_a_bundle(tmp_path):
    r = subprocess.run(['bash', str(ROOT / 'bench' / 'gpu_suite.sh'), str(tmp_path), str(tmp_path / 'out')],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f'gpu_suite.sh: error: {tmp_path} has no wheels/; make it with bench/offline_bundle.py'], r.stderr
