"""Build the documentation site from the notebooks, offline: `python docs/build.py` (after `pip install -e ".[docs]"`).

1. **Run**: every notebook nbdev finds goes through nbdev's own docs processors (the ones `nbdev-proc-nbs` and
   `nbdev-docs` use: a `show_doc` entry for every exported symbol, exported and hidden cells removed, symbols linked),
   except that every cell `nbdev-test` would run is run (same `tst_flags`, `eval: false` and `skip_exec` rules), so the
   pages show their figures and printed results. The result lands where nbdev puts it, in `_proc/`; a notebook is run
   again only when it, or the library, changed since. On a machine with Quarto, `nbdev-docs` reuses these files.
2. **Stage**: `_proc/` is turned into MyST notebooks in `_docs_build/src/`: nbdev's front matter becomes the page title,
   Quarto's cell options (`echo: false`, ...) become myst-nb's cell tags, links to the published site become links
   inside this one, and the home page gets the table of contents (every staged page, grouped by package; nothing
   is listed by hand).
3. **Render**: Sphinx with myst-nb writes the site to `_docs/` without executing anything; MathJax comes from the
   `jupyter-server-mathjax` package, Bokeh and Panel are inlined into the outputs, so no page loads anything from the
   network. Open `_docs/index.html`: no server is needed, search included.
"""
import argparse, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / 'docs'
PROC, BUILD, OUT = ROOT / '_proc', ROOT / '_docs_build', ROOT / '_docs'   # nbdev's folder; Sphinx's; the site
SRC = BUILD / 'src'
RAN = 'fastdit_docs_ran'                                 # notebook metadata: every cell ran (see _run_one)
ASSETS = ('.png', '.jpg', '.jpeg', '.gif', '.svg', '.webp')

# ---------------------------------------------------------------------------------------------------------------
# 1. run the notebooks through nbdev's processors

def notebooks():
    "The notebooks nbdev documents (its own glob: files and folders starting with `_` or `.` are skipped), sorted."
    from nbdev.doclinks import nbglob
    return sorted(nbglob(func=Path))

def _exec_filter(run_ids):
    "nbdev's `FilterDefaults` with its `exec_show_docs` step running every cell in `run_ids` and every added `show_doc`."
    from nbdev.processors import FilterDefaults, exec_show_docs

    class exec_cells(exec_show_docs):
        def __call__(self, cell):
            if not hasattr(self, 'k') or cell.cell_type != 'code': return
            if cell.get('id') in run_ids or getattr(cell, 'has_sd', False): self.k.cell(cell)
            if (e := self.k.exc): raise RuntimeError(f'cell {cell.idx_}:\n{cell.source}\n{type(e).__name__}: {e}') from e

    class ExecDocs(FilterDefaults):
        def base_procs(self): return [exec_cells if p is exec_show_docs else p for p in super().base_procs()]
    return ExecDocs()

def _run_one(job):
    "Process and run one notebook (in the notebook's folder, as `nbdev-test` does)."
    src, dst = map(Path, job)
    from fastcore.nbio import read_nb, write_nb
    from fastcore.xtras import working_directory
    from nbdev.config import get_config
    from nbdev.test import nb_test_cells
    cfg = get_config()
    flags = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags or [])
    run_ids = {c.get('id') for c in nb_test_cells(src, skip_flags=flags)}
    os.environ['IN_TEST'] = '1'                          # what nbdev-test sets for the code under test
    os.environ['PANEL_INLINE'] = '1'                     # Bokeh/Panel's JavaScript inside the output: no CDN
    t0 = time.time()
    with working_directory(src.parent):
        nb = read_nb(src)
        try: _exec_filter(run_ids)(nb)
        except Exception as e: sys.exit(f'{src.relative_to(ROOT)}: {e}')
    nb.metadata[RAN] = True                              # nbdev-proc-nbs' files lack it: their cells did not run
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_nb(nb, dst)
    print(f'  ran {src.relative_to(ROOT)} in {time.time() - t0:.0f} s', flush=True)

def _ran(p:Path) -> bool:
    try: return bool(json.loads(p.read_text()).get('metadata', {}).get(RAN))
    except ValueError: return False

def run_notebooks(force=False, n_workers=None):
    "Bring `_proc/` up to date: run each notebook that changed, or all of them when the library changed (or `force`)."
    from concurrent.futures import ThreadPoolExecutor
    from nbdev.config import get_config
    cfg = get_config()
    nbs = cfg.nbs_path
    lib_mtime = max(p.stat().st_mtime for p in [cfg.config_file, *cfg.lib_path.rglob('*.py')])
    jobs = []
    for src in notebooks():
        dst = PROC / src.relative_to(nbs)
        if force or not dst.exists() or dst.stat().st_mtime < max(src.stat().st_mtime, lib_mtime) or not _ran(dst):
            jobs.append((src, dst))
    for p in nbs.rglob('*'):                             # images and other files the notebooks show
        if p.suffix.lower() in ASSETS and not any(part[0] in '_.' for part in p.relative_to(nbs).parts):
            (PROC / p.relative_to(nbs)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, PROC / p.relative_to(nbs))
    print(f'running {len(jobs)} of {len(notebooks())} notebooks', flush=True)
    if not jobs: return
    n_workers = min(len(jobs), n_workers or os.cpu_count() or 1)
    threads = str(max(1, (os.cpu_count() or 1) // n_workers))    # the cores shared out, not oversubscribed
    env = {**os.environ, 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', threads)}
    def one(job):                                        # a fresh interpreter per notebook, as in nbdev-test
        r = subprocess.run([sys.executable, __file__, '--run-one', *map(str, job)], capture_output=True, text=True, env=env)
        print(r.stdout, end='', flush=True)
        return r.returncode and (r.stderr[-3000:] or f'{job[0]} failed')
    with ThreadPoolExecutor(n_workers) as ex: errors = [e for e in ex.map(one, jobs) if e]
    if errors: sys.exit('notebooks failed:\n' + '\n'.join(errors))

# ---------------------------------------------------------------------------------------------------------------
# 2. stage _proc/ as MyST notebooks

_re_fm = re.compile(r'^---\n(.*?)\n---', re.S)
_re_quarto = re.compile(r'^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$', re.M)
_re_sd_head = re.compile(r'^#{2,6}\s+(\S+)\s*$', re.M)
TAGS = {('echo', 'false'): 'remove-input', ('output', 'false'): 'remove-output', ('include', 'false'): 'remove-cell'}

def _text(x): return ''.join(x) if isinstance(x, list) else (x or '')

def page_name(nb, rel:Path) -> str:
    "The page's path without `.html`, as nbdev names it (`output-file` in the front matter: `methods.tread`)."
    fm = front_matter(nb)
    out = fm.get('output-file')
    return str(rel.parent / Path(out).stem) if out else str(rel.with_suffix('')).replace('\\', '/')

def front_matter(nb) -> dict:
    import yaml
    c = nb['cells'][0] if nb['cells'] else None
    if c and c['cell_type'] == 'raw' and (m := _re_fm.match(_text(c['source']).strip())): return yaml.safe_load(m[1]) or {}
    return {}

def api_names(cell) -> list:
    "The symbols a `show_doc` cell's output documents (its headings)."
    return [h for o in cell.get('outputs', []) for h in _re_sd_head.findall(_text(o.get('data', {}).get('text/markdown')))]

def is_show_doc(cell): return cell['cell_type'] == 'code' and re.search(r'^show_doc\(', _text(cell['source']), re.M)

def _relink(text, here:str, anchors:dict, site:str):
    "Links to the published site (nbdev writes them) point inside this one; anchors are Sphinx's ids of the headings."
    from docutils.nodes import make_id
    def sub(m):
        page, anchor = m[1], m[2]
        rel = os.path.relpath(page, os.path.dirname(here) or '.').replace('\\', '/')
        if not anchor: return f'({rel})'
        known = anchors.get(page.removesuffix('.html'), set())
        for a in (anchor, anchor.split('.')[0]):         # a method without its own entry: its class's entry
            if make_id(a) in known: return f'({rel}#{make_id(a)})'
        return f'({rel})'
    return re.sub(rf'\({re.escape(site)}/?([^)#\s]*\.html)(?:#([^)\s]*))?\)', sub, text)

_re_panel_cdn = re.compile(r'https://cdn\.holoviz\.org/panel/[^/]+/dist/([\w./-]+)')

def _localize(text:str, here:str, used:set) -> str:
    "Panel's stylesheets, which its outputs take from its CDN, from the copy inside the installed package instead."
    import panel
    dist = Path(panel.__file__).parent / 'dist'
    def sub(m):
        if not (dist / m[1]).is_file(): return m[0]
        used.add(m[1])
        return os.path.relpath(f'_static/panel/{m[1]}', os.path.dirname(here) or '.').replace('\\', '/')
    return _re_panel_cdn.sub(sub, text)

def stage():
    "Write `_docs_build/src/`: one MyST notebook per page, the home page with the table of contents, Sphinx's config."
    from docutils.nodes import make_id
    from nbdev.config import get_config
    cfg = get_config()
    site = cfg.doc_host.rstrip('/') + '/' + cfg.doc_baseurl.strip('/')
    pages = {}                                            # page name -> (source notebook, processed notebook)
    for src in notebooks():
        nb = json.loads((PROC / src.relative_to(cfg.nbs_path)).read_text())
        pages[page_name(nb, src.relative_to(cfg.nbs_path))] = (src, nb)
    anchors = {name: {make_id(n) for c in nb['cells'] if is_show_doc(c) for n in api_names(c)}
               for name, (_, nb) in pages.items()}
    shutil.rmtree(SRC, ignore_errors=True); SRC.mkdir(parents=True)
    panel_files = set()
    for name, (src, nb) in pages.items():
        fm = front_matter(nb)
        cells = nb['cells'][1:] if fm else nb['cells']
        head = f"# {fm.get('title', Path(name).name)}" + (f"\n\n> {fm['description']}" if fm.get('description') else '')
        out = [dict(cell_type='markdown', metadata={}, source=head)]
        for c in cells:
            c = {k: v for k, v in c.items() if k in ('cell_type', 'metadata', 'source', 'outputs', 'execution_count')}
            c['metadata'] = {k: v for k, v in c.get('metadata', {}).items() if k not in ('execution',)}
            src_text = _text(c['source'])
            if c['cell_type'] == 'code':
                tags = [TAGS[k] for k in ((o, v.lower()) for o, v in _re_quarto.findall(src_text)) if k in TAGS]
                if is_show_doc(c): tags.append('api')
                c['source'] = _re_quarto.sub('', src_text).strip('\n')
                if tags: c['metadata']['tags'] = tags
                for o in c.get('outputs', []):
                    data = o.get('data', {})
                    md = data.get('text/markdown')
                    if md is not None: data['text/markdown'] = _relink(_text(md), name, anchors, site)
                    for k in ('text/html', 'application/javascript'):
                        if k in data and 'cdn.holoviz.org' in _text(data[k]): data[k] = _localize(_text(data[k]), name, panel_files)
            elif c['cell_type'] == 'markdown': c['source'] = _relink(src_text, name, anchors, site)
            out.append(c)
        if name == 'index': out.append(dict(cell_type='markdown', metadata={}, source=toc(pages)))
        for i, c in enumerate(out): c['id'] = f'c{i}'
        dst = SRC / f'{name}.ipynb'
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(json.dumps(dict(cells=out, metadata=nb.get('metadata', {}), nbformat=4, nbformat_minor=5)))
    for p in PROC.rglob('*'):
        if p.suffix.lower() in ASSETS: (SRC / p.relative_to(PROC)).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(p, SRC / p.relative_to(PROC))
    if panel_files:
        import panel
        for f in panel_files:
            (SRC / '_static' / 'panel' / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(panel.__file__).parent / 'dist' / f, SRC / '_static' / 'panel' / f)
    shutil.copy2(DOCS / 'conf.py', SRC / 'conf.py')
    return pages

def toc(pages:dict) -> str:
    "The site's table of contents: the tutorials and other folders first, then the API pages grouped by package."
    folders, groups = {}, []
    for name, (src, _) in pages.items():
        if name == 'index': continue
        if '/' in name: folders.setdefault(name.split('/')[0], []).append(name); continue
        pkg = name.split('.')[0] if '.' in name else 'core'
        if groups and (groups[-1][0] == pkg or (pkg == 'core' and '.' not in groups[-1][1][-1])): groups[-1][1].append(name)
        else: groups.append((pkg, [name]))
    def tree(caption, names): return '\n'.join(['```{toctree}', f':caption: {caption}', ':maxdepth: 1', '', *names, '```'])
    return '\n\n'.join([tree(f.replace('_', ' ').capitalize(), ns) for f, ns in folders.items()] +
                       [tree('API: ' + ', '.join(dict.fromkeys(n.split('.')[0] for n in ns)), ns) for _, ns in groups])

# ---------------------------------------------------------------------------------------------------------------
# 3. render with Sphinx

def render(strict=True):
    import jupyter_server_mathjax
    mj = Path(jupyter_server_mathjax.__file__).parent / 'static'
    shutil.copytree(mj, SRC / '_static' / 'mathjax', dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns('*.md', 'unpacked', 'test'))
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-q', '-d', str(BUILD / 'doctrees'), str(SRC), str(BUILD / 'html')]
    if strict: cmd[5:5] = ['-W', '--keep-going']
    subprocess.run(cmd, check=True)                      # myst-nb keeps its copies beside the html: in BUILD too
    shutil.rmtree(OUT, ignore_errors=True); shutil.copytree(BUILD / 'html', OUT)
    (OUT / '.nojekyll').touch()

# ---------------------------------------------------------------------------------------------------------------
# README.md from nbs/index.ipynb (nbdev-readme would do it through Quarto)

def readme_text(index:Path) -> str:
    "README.md's text: `index`'s Markdown cells as they are, its code cells as Python blocks (no outputs, no `#|` lines)."
    parts = []
    for c in json.loads(index.read_text())['cells']:
        src = _text(c['source']).strip('\n')
        if c['cell_type'] == 'markdown': parts.append(src)
        elif c['cell_type'] == 'code' and not re.search(r'^#\|\s*hide\b', src, re.M):
            code = '\n'.join(l for l in src.splitlines() if not re.match(r'\s*#\|', l)).strip('\n')
            if code: parts.append(f'```python\n{code}\n```')
    return '\n\n'.join(parts) + '\n'

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--force', action='store_true', help='run every notebook again, even unchanged ones')
    p.add_argument('--workers', type=int, default=None, help='notebooks run in parallel (default: the CPU count)')
    p.add_argument('--no-run', action='store_true', help='reuse _proc/ as it is (e.g. written by nbdev-proc-nbs)')
    p.add_argument('--readme', action='store_true', help='only write README.md from nbs/index.ipynb')
    p.add_argument('--run-one', nargs=2, metavar=('NOTEBOOK', 'OUT'), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.run_one: return _run_one(a.run_one)
    if a.readme: return (ROOT / 'README.md').write_text(readme_text(ROOT / 'nbs' / 'index.ipynb'))
    os.chdir(ROOT)
    t0 = time.time()
    if not a.no_run: run_notebooks(a.force, a.workers)
    t1 = time.time(); pages = stage(); render()
    print(f'{len(pages)} pages in {OUT.relative_to(ROOT)}/ (notebooks {t1 - t0:.0f} s, site {time.time() - t1:.0f} s)')

if __name__ == '__main__': main()
