"""Shared helpers and fixtures of the test suite, and what its markers do.

- `slow`: minutes-long tests (training subprocesses, two-process DDP/FSDP, the kill-and-resume test) and every
  browser test (`ui`). `pytest -q` runs them, as CI does; `pytest -q -m "not slow"` is the quick local pass.
- `cuda`: needs a CUDA GPU; skipped, with the reason, where torch sees none.
- `ui`: drives Chromium through Playwright (skipped, with the reason, when Chromium is not installed)."""
import os, shutil, socket, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

def pytest_collection_modifyitems(config, items):
    "Browser tests count as slow; `cuda` tests skip without a GPU."
    import torch
    no_gpu = pytest.mark.skip(reason='needs a CUDA GPU; torch.cuda.is_available() is False here')
    for item in items:
        if 'ui' in item.keywords: item.add_marker(pytest.mark.slow)
        if 'cuda' in item.keywords and not torch.cuda.is_available(): item.add_marker(no_gpu)

def shared_data() -> Path|None:
    "Folder with the real datasets (mnist/, fashion-mnist/, cifar10-jpeg/): $FASTDIT_DATA, else ../shared/data beside the repo."
    p = Path(os.environ.get('FASTDIT_DATA', ROOT.parent / 'shared' / 'data'))
    return p if (p / 'mnist').exists() else None

@pytest.fixture
def data_dir():
    d = shared_data()
    if d is None: pytest.skip('real datasets not found: set FASTDIT_DATA to a folder holding mnist/, fashion-mnist/ and cifar10-jpeg/')
    return d

# Browser tests: Debian's Chromium, driven by Playwright; one browser for the session, a fresh page per check.
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync']
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason='Chromium not installed: apt-get install chromium (CI does)')

@pytest.fixture(scope='session')
def chromium():
    from playwright.sync_api import sync_playwright
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close(); pw.stop()

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def run_cli(*args, timeout=600, env=None, cwd=None) -> subprocess.CompletedProcess:
    "Run `python -m fastdit_lab.cli *args` in a fresh interpreter (a ceiling of `timeout` s: 10 min by default)."
    return subprocess.run([sys.executable, '-m', 'fastdit_lab.cli', *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd)

def wait_until(cond, timeout:float, what:str, every:float=0.1):
    "Poll `cond()` until it is true; fail naming `what` after `timeout` s (a ceiling for a busy machine, not a guess)."
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline: pytest.fail(f'{what} did not happen within {timeout:.0f} s')
        time.sleep(every)

# The reference run: a tiny SiT run trained once per session through the command line, for the CLI tests (the
# fault-sequence test kills, damages and resumes a run against its own uninterrupted one).
REFERENCE_STEPS, REFERENCE_CKPT = 12, 6
REFERENCE_ARGS = ['train', '--recipe', 'sit', '--model', 'DiT-T/4', '--image-size', '16', '--steps', REFERENCE_STEPS,
                  '--batch-size', 8, '--log-every', 1, '--ckpt-every', REFERENCE_CKPT, '--sample-n', 10,
                  '--sample-steps', 2, '--hflip']

@pytest.fixture(scope='session')
def reference_run(tmp_path_factory):
    "(run folder, the train command's output) of the reference run."
    run = tmp_path_factory.mktemp('reference') / 'run'
    r = run_cli(*REFERENCE_ARGS, '--run-dir', run)
    assert r.returncode == 0, r.stderr[-3000:]
    return run, r.stdout
