"""Every exported module imports, and every name in its __all__ exists, with no other module of the package loaded
before it (no notebook state, no registration done by a module that happened to be imported first).

One helper process imports the third-party libraries once (torch dominates the time), then forks a child per
module: each child starts with none of fastdit_lab loaded and imports just its module."""
import json, subprocess, sys
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parents[1] / 'fastdit_lab'
MODULES = sorted('.'.join(p.relative_to(PKG.parent).with_suffix('').parts).removesuffix('.__init__')
                 for p in PKG.rglob('*.py') if p.name != '_modidx.py')

FORK_SERVER = r'''
import importlib, json, os, sys
for lib in ('torch', 'numpy', 'scipy', 'xarray', 'accelerate', 'safetensors', 'PIL', 'fastcore', 'tqdm', 'torchmetrics',
            'panel', 'holoviews', 'param', 'bokeh', 'pandas'):
    try: importlib.import_module(lib)
    except ImportError: pass
assert not [m for m in sys.modules if m.startswith('fastdit_lab')]
out = {}
for mod in json.loads(sys.argv[1]):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                            # the child: import one module, report, leave at once
        os.close(r)
        try:
            m = importlib.import_module(mod)
            missing = [n for n in getattr(m, '__all__', []) if not hasattr(m, n)]
            msg = f'missing from __all__: {missing}' if missing else 'ok'
        except BaseException as e: msg = f'{type(e).__name__}: {e}'
        os.write(w, msg.encode()); os._exit(0)
    os.close(w)
    with os.fdopen(r) as f: out[mod] = f.read()
    os.waitpid(pid, 0)
print(json.dumps(out))
'''

@pytest.fixture(scope='module')
def imported():
    "{module: 'ok' or what went wrong}, each module imported in its own fresh child process."
    r = subprocess.run([sys.executable, '-c', FORK_SERVER, json.dumps(MODULES)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])

def test_all_modules_listed():
    assert {'fastdit_lab.core', 'fastdit_lab.models.dit', 'fastdit_lab.train.trainer', 'fastdit_lab.cli'} <= set(MODULES)

@pytest.mark.parametrize('mod', MODULES)
def test_fresh_import(mod, imported):
    assert imported[mod] == 'ok', imported[mod]

def test_a_broken_module_is_reported(tmp_path):
    "The check can fail: a module whose __all__ names something it does not define."
    (tmp_path / 'broken_mod.py').write_text("__all__ = ['here', 'gone']\nhere = 1\n")
    r = subprocess.run([sys.executable, '-c', FORK_SERVER, json.dumps(['broken_mod'])], capture_output=True, text=True,
                       timeout=600, env={'PYTHONPATH': str(tmp_path), 'PATH': '/usr/bin:/bin'})
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {'broken_mod': "missing from __all__: ['gone']"}
