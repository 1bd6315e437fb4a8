"""The markers do what conftest.py says: `pytest` runs slow and browser tests (as CI does), `-m "not slow"` leaves
them out, and a `cuda` test skips with its reason where torch sees no GPU."""
import shutil, subprocess, sys
from pathlib import Path
import pytest
import torch

SAMPLE = '''import pytest
@pytest.mark.slow
def test_long(): pass
@pytest.mark.ui
def test_page(): pass
@pytest.mark.cuda
def test_gpu(): import torch; assert torch.cuda.is_available()
def test_quick(): pass
'''

def outcome(folder, *args) -> str:
    r = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-rs', '-p', 'no:cacheprovider', *args, str(folder)],
                       capture_output=True, text=True, timeout=300, cwd=folder)
    return r.stdout

@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the skip that happens without a GPU')
def test_markers(tmp_path):
    shutil.copy(Path(__file__).with_name('conftest.py'), tmp_path)
    (tmp_path / 'pytest.ini').write_text('[pytest]\nmarkers =\n    slow: s\n    ui: u\n    cuda: c\n')
    (tmp_path / 'test_sample.py').write_text(SAMPLE)
    everything, quick = outcome(tmp_path), outcome(tmp_path, '-m', 'not slow')
    assert '3 passed, 1 skipped' in everything, everything              # slow and ui run
    assert '1 passed, 1 skipped, 2 deselected' in quick, quick           # ui counts as slow
    assert 'needs a CUDA GPU' in quick, quick
