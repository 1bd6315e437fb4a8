"""The package's imports run one way: core → diffusion → models → data → train → methods → all → dash → cli.

Every module is parsed (not imported): top-level and function-local `import`/`from … import`, relative imports
resolved, and every string that is the exact name of one of the package's modules (what `importlib.import_module`,
`__import__` or a list of plugin modules would import). An edge to a higher layer, or any cycle (also inside one
layer), fails with the modules that make it."""
import ast
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parents[1] / 'fastdit_lab'
LAYERS = ['core', 'diffusion', 'models', 'data', 'train', 'methods', 'all', 'dash', 'cli']
# Data in and data out: datasets, latents, and the evaluation of sample files sit on one layer.
DATA_MODULES = {'fastdit_lab.data', 'fastdit_lab.latents', 'fastdit_lab.eval', 'fastdit_lab.metrics',
                'fastdit_lab.inception', 'fastdit_lab.samples', 'fastdit_lab.evaluator'}

def module_name(path:Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)

def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob('*.py')) if p.name != '_modidx.py'}

def layer(mod:str) -> int:
    "Position of `mod` in LAYERS (the package root and core are layer 0)."
    parts = mod.split('.')
    if len(parts) == 1 or parts[1] == 'core': return 0
    if mod in DATA_MODULES: return LAYERS.index('data')
    return LAYERS.index(parts[1])

def _resolve(node:ast.ImportFrom, mod:str, is_pkg:bool) -> str:
    if not node.level: return node.module or ''
    base = mod.split('.') if is_pkg else mod.split('.')[:-1]
    base = base[:len(base) - (node.level - 1)]
    return '.'.join(base + ([node.module] if node.module else []))

def imports_of(mod:str, path:Path, known:set) -> set[str]:
    "The package modules `mod` imports anywhere in its source: statements and importlib strings."
    out, is_pkg = set(), path.name == '__init__.py'
    def add(name:str):
        while name and name not in known: name = name.rpartition('.')[0]     # `a.b.C` (a class) -> module `a.b`
        if name and name != mod: out.add(name)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names: add(a.name)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, mod, is_pkg)
            for a in node.names: add(f'{base}.{a.name}' if f'{base}.{a.name}' in known else base)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in known:
            add(node.value)                 # a module named in a string is an import waiting to happen
    return {m for m in out if m.startswith('fastdit_lab')}

def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports_of(m, p, set(mods)) for m, p in mods.items()}

def upward_edges(g) -> list[str]:
    return sorted(f'{a} ({LAYERS[layer(a)]}) -> {b} ({LAYERS[layer(b)]})' for a, bs in g.items() for b in bs
                  if layer(b) > layer(a))

def cycles(g) -> list[list[str]]:
    "The strongly connected components with more than one module (Tarjan), each as a sorted list."
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
        for w in g.get(v, ()):
            if w not in index: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    for v in sorted(g):
        if v not in index: visit(v)
    return out

def test_the_parser_sees_every_kind_of_import(tmp_path):
    "Top-level, relative, function-local and string (importlib) edges are all found (on a tiny fake package)."
    global PKG
    pkg, old = tmp_path / 'fastdit_lab', PKG
    (pkg / 'train').mkdir(parents=True); (pkg / 'methods').mkdir()
    for f in ('__init__.py', 'core.py', 'train/__init__.py', 'methods/__init__.py'): (pkg / f).write_text('')
    (pkg / 'methods' / 'm.py').write_text('from ..train import t\n')
    (pkg / 'train' / 't.py').write_text('from ..core import x\ndef f():\n    import importlib\n'
                                        "    importlib.import_module('fastdit_lab.methods.m')\n")
    (pkg / 'core.py').write_text("PLUGINS = ('fastdit_lab.train.t',)\n")
    PKG = pkg
    try:
        g = graph()
        assert g['fastdit_lab.methods.m'] == {'fastdit_lab.train.t'}
        assert g['fastdit_lab.train.t'] == {'fastdit_lab.core', 'fastdit_lab.methods.m'}
        assert g['fastdit_lab.core'] == {'fastdit_lab.train.t'}
        assert upward_edges(g) == ['fastdit_lab.core (core) -> fastdit_lab.train.t (train)',
                                   'fastdit_lab.train.t (train) -> fastdit_lab.methods.m (methods)']
        assert cycles(g) == [['fastdit_lab.core', 'fastdit_lab.methods.m', 'fastdit_lab.train.t']]
    finally: PKG = old

def test_every_module_has_a_layer():
    for m in modules(): assert 0 <= layer(m) < len(LAYERS), m

def test_no_upward_edge():
    bad = upward_edges(graph())
    assert not bad, 'imports against the layer order:\n' + '\n'.join(bad)

def test_no_cycle():
    bad = cycles(graph())
    assert not bad, 'import cycles:\n' + '\n'.join(' <-> '.join(c) for c in bad)
