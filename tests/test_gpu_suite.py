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
