"""`bench/gpu_suite.py --smoke` runs every part of the GPU suite on the CPU at tiny sizes and writes one JSON with
every part's figures, so the command is known to work before a GPU is ever used."""
import json, os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = {'dense_training', 'ours_vs_diffusers', 'token_plans', 'dydit_sampling', 'memory_per_size', 'evidence_race'}

def arms_of(result:dict) -> list:
    "The timed arms of a part's result: its `arms`, or for dense training each batch's row."
    return list(result['arms'].values()) if 'arms' in result else [r for r in result['per_batch'] if 'img_per_s' in r]

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
    assert doc['settings']['compiler_check'] == dict(backend='eager', ok=True)
    s = doc['summary']
    for k in ('ours_over_diffusers', 'tread_speedup', 'maskdit_speedup', 'dydit_sampling_speedup', 'dense_img_per_s'):
        assert isinstance(s[k], float) and s[k] > 0, (k, s)
    race = doc['results']['evidence_race']['result']['rows']
    assert [r['arm'] for r in race] == ['dense (DiT)', 'SiT', 'FasterDiT', 'TREAD', 'FasterDiT + TREAD']
    assert all(r['fid'] > 0 and 0 <= r['class_accuracy'] <= 1 for r in race), race
    assert doc['complete'] is True and doc['skipped'] == []             # the last write, after every part
    timed = [a for part in ('dense_training', 'token_plans', 'ours_vs_diffusers') for a in arms_of(doc['results'][part]['result'])]
    assert len(timed) == 9 and all(a['graphs_compiled_while_timed'] == 0 for a in timed), timed   # warm-up compiled it all
    vs = doc['results']['ours_vs_diffusers']['result']
    assert set(vs['arms']) == {f'{i}/{m}' for i in ('fastdit_lab', 'diffusers') for m in ('compiled', 'eager')}
    assert set(vs['compile_speedup']) == {'fastdit_lab', 'diffusers'} and vs['ours_over_diffusers_eager'] > 0
    mem = doc['results']['memory_per_size']['result']
    assert [r['model'] for r in mem] == ['DiT-T/8', 'DiT-T/4'] and all(r['planned_gb'] > 0 for r in mem)

@pytest.mark.slow
def test_gpu_suite_time_limit_skips_what_cannot_start_and_says_so(tmp_path):
    "A lease of fixed length: a part that would start with too little time left is skipped, listed, and not a failure."
    r = subprocess.run([sys.executable, str(ROOT / 'bench' / 'gpu_suite.py'), '--smoke', '--out', str(tmp_path),
                        '--time-limit', '10', '--parts', 'memory_per_size', 'evidence_race'],
                       capture_output=True, text=True, timeout=300, cwd=ROOT, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    doc = json.loads(next(tmp_path.glob('gpu_suite-smoke-*.json')).read_text())
    assert doc['failed'] == [] and doc['skipped'] == ['memory_per_size', 'evidence_race'] and doc['complete'] is True
    assert 'time limit' in doc['results']['evidence_race']['skipped'] and 'evidence_race: skipped' in r.stdout

def test_race_arms_shorten_to_the_time_left():
    "The GPU profile's race: 25 s an arm with time to spare, then (left − 30 s) / 5 arms − 12 s of scoring, none under 8 s."
    sys.path.insert(0, str(ROOT / 'bench'))
    import time
    from gpu_suite import PROFILES, OutOfTime, race_budget
    at = lambda left: dict(PROFILES['gpu'], deadline=time.perf_counter() + left)
    assert race_budget(dict(PROFILES['gpu'], deadline=None)) == 25.0
    assert race_budget(at(600)) == 25.0
    assert abs(race_budget(at(200)) - ((200 - 30) / 5 - 12)) < 0.01
    with pytest.raises(OutOfTime, match='under 8 s of training per arm'): race_budget(at(100))

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

def test_compiler_check_falls_back_to_eager_when_the_backend_cannot_build():
    "A GPU machine without a C compiler cannot build Triton's kernels: the suite finds out once, first, and says so."
    sys.path.insert(0, str(ROOT / 'bench'))
    import torch
    from gpu_suite import compiler_check
    def no_compiler(gm, example_inputs): raise RuntimeError('Failed to find C compiler. Please specify via CC')
    r = compiler_check(torch.device('cpu'), no_compiler)
    assert r['ok'] is False and r['backend'] == 'eager' and 'C compiler' in r['error'], r
    assert compiler_check(torch.device('cpu'), 'eager') == dict(backend='eager', ok=True)
