import os, socket, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

def shared_data() -> Path|None:
    "Folder with the real datasets (mnist/, fashion-mnist/, cifar10-jpeg/): $FASTDIT_DATA, else ../shared/data beside the repo."
    p = Path(os.environ.get('FASTDIT_DATA', ROOT.parent / 'shared' / 'data'))
    return p if (p / 'mnist').exists() else None

@pytest.fixture
def data_dir():
    d = shared_data()
    if d is None: pytest.skip('real datasets not found: set FASTDIT_DATA to a folder holding mnist/, fashion-mnist/ and cifar10-jpeg/')
    return d

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def run_cli(*args, timeout=600, env=None, cwd=None) -> subprocess.CompletedProcess:
    "Run `python -m fastdit_lab.cli *args` in a fresh interpreter."
    return subprocess.run([sys.executable, '-m', 'fastdit_lab.cli', *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd)
