"Every exported module imports, and every name in its __all__ exists, in a fresh interpreter (no notebook state)."
import importlib, pkgutil, subprocess, sys
import pytest
import fastdit_lab

MODULES = sorted(m.name for m in pkgutil.walk_packages(fastdit_lab.__path__, 'fastdit_lab.') if not m.name.endswith('_modidx'))

def test_all_modules_listed():
    assert {'fastdit_lab.core', 'fastdit_lab.models.dit', 'fastdit_lab.train.trainer', 'fastdit_lab.cli'} <= set(MODULES)

@pytest.mark.parametrize('mod', MODULES)
def test_fresh_import(mod):
    code = (f"import {mod} as m\n"
            "missing = [n for n in getattr(m, '__all__', []) if not hasattr(m, n)]\n"
            "assert not missing, missing\nprint(len(getattr(m, '__all__', [])))")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
