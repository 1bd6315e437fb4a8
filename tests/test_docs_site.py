"""The documentation site in a real browser (Debian's Chromium driven by Playwright), served from `_docs/` on
127.0.0.1: every notebook is a page; every API page shows an entry (signature and docstring) for each function and
class its module exports; equations are typeset, images and plots drawn; every internal link and asset resolves,
anchors included; nothing is fetched from another host; the sidebar navigates and the search page finds a symbol.
The site is built (`python docs/build.py`) when it is missing or older than the notebooks or the library."""
import functools, http.server, importlib, importlib.util, inspect, json, os, re, subprocess, sys, threading, urllib.request
from pathlib import Path
from urllib.parse import urldefrag, urlsplit
import pytest
from conftest import ROOT, needs_chromium

pytestmark = [pytest.mark.ui, needs_chromium]
SITE, PROC = ROOT / '_docs', ROOT / '_proc'
_spec = importlib.util.spec_from_file_location('fastdit_docs_build', ROOT / 'docs' / 'build.py')
build = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(build)    # which notebooks, and the build

def expected_pages() -> dict:
    "Page name -> notebook, for every notebook nbdev finds (nbdev names a page after its notebook, less the number)."
    os.chdir(ROOT)
    nbs = ROOT / 'nbs'
    def name(p): rel = p.relative_to(nbs); return str(rel.parent / re.sub(r'^\d+[a-z]?_', '', rel.stem)).removeprefix('./')
    return {name(p): p for p in build.notebooks()}

def _stale() -> bool:
    index = SITE / 'index.html'
    if not index.exists(): return True
    srcs = [*build.notebooks(), *(ROOT / 'fastdit_lab').rglob('*.py'), *(ROOT / 'docs').glob('*.py')]
    return max(p.stat().st_mtime for p in srcs) > index.stat().st_mtime

@pytest.fixture(scope='module')
def site():
    if os.environ.get('FASTDIT_DOCS_PREBUILT') != '1' and _stale():      # =1: test _docs/ as it is
        subprocess.run([sys.executable, str(ROOT / 'docs' / 'build.py')], check=True, cwd=ROOT)
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
        def handle(self):
            try: super().handle()
            except ConnectionError: pass                  # the browser moved on to the next page
    handler = functools.partial(Quiet, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)        # a free port, chosen now
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{server.server_address[1]}/'
    server.shutdown()

class Page:
    "A page that records page errors, failed requests, HTTP errors and any request to another host (refused)."
    def __init__(self, browser, base):
        self.page = browser.new_page(viewport={'width': 1400, 'height': 1000})
        self.page.set_default_timeout(120_000)       # a ceiling for a busy machine (the tutorial's page is 7 MB)
        self.problems, host = [], urlsplit(base).netloc
        def route(r):
            u = urlsplit(r.request.url)
            if u.scheme in ('http', 'https') and u.netloc != host:
                self.problems.append(f'external request: {r.request.url}'); return r.abort()
            r.continue_()
        self.page.route('**/*', route)
        self.page.on('pageerror', lambda e: self.problems.append(f'page error: {e}'))
        self.page.on('requestfailed', lambda r: r.url.startswith('http') and 'ERR_ABORTED' not in (r.failure or '')  # left the page
                     and self.problems.append(f'request failed: {r.url} {r.failure}'))
        self.page.on('response', lambda r: r.status >= 400 and self.problems.append(f'HTTP {r.status}: {r.url}'))

@functools.lru_cache(maxsize=None)
def ids_of(url:str) -> frozenset:
    "The element ids of the page at `url` (raises for a missing page)."
    html = urllib.request.urlopen(url, timeout=30).read().decode()
    return frozenset(re.findall(r'\bid="([^"]+)"', html))

def api_symbols() -> dict:
    "Page name -> the functions and classes a module exports (its `__all__`), as nbdev's index places them."
    from fastdit_lab._modidx import d
    res = {}
    for mod, syms in d['syms'].items():
        try: m = importlib.import_module(mod)
        except ImportError: continue                      # an optional extra that is not installed
        for name in getattr(m, '__all__', []):
            o = getattr(m, name, None)
            if not (inspect.isclass(o) or inspect.isfunction(o)) or getattr(o, '__module__', None) != mod: continue
            link = syms.get(f'{mod}.{name}')
            if link: res.setdefault(link[0].split('#')[0].removesuffix('.html'), []).append((name, inspect.getdoc(o)))
    return res

def words(s:str) -> list:
    "The lower-case words of `s` outside `$math$`, without Markdown's backticks and emphasis (gone once rendered)."
    return re.findall(r'[^\W_]+', re.sub(r'\$[^$]*\$|[`*]', '', s).lower())

def proc_figures(name:str, nb_path:Path) -> tuple:
    "Images and Bokeh/HoloViews plots among the outputs of the notebook as run for the docs (`_proc/`)."
    nb = json.loads((PROC / nb_path.relative_to(ROOT / 'nbs')).read_text())
    outs = [o.get('data', {}) for c in nb['cells'] for o in c.get('outputs', [])]
    imgs = sum(any(k.startswith('image/') for k in o) for o in outs)
    plots = sum('application/vnd.holoviews_exec.v0+json' in o for o in outs)
    return imgs, plots

def test_every_notebook_is_a_page(site):
    pages = expected_pages()
    assert len(pages) >= 28 and 'index' in pages and 'tutorials/live_monitor' in pages
    missing = [n for n in pages if not (SITE / f'{n}.html').exists()]
    assert not missing, f'notebooks without a page: {missing}'

def test_pages_render_api_math_figures_and_links(site, chromium):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    pages, api = expected_pages(), api_symbols()
    assert sum(map(len, api.values())) >= 100 and {'methods.tread', 'train.trainer', 'models.dit'} <= set(api)
    p = Page(chromium, site)
    checked = dict(pages=0, api=0, math=0, images=0, plots=0, links=0)
    failures = []
    for name, nb in pages.items():
        url = site + name + '.html'
        p.problems.clear()
        p.page.goto(url, wait_until='load')
        page = p.page
        where = f'{name}.html'
        # API entries: one per exported function/class, with its signature and its docstring's first line
        entries = page.locator('.tag_api')
        texts = {e.locator('.rubric, h2, h3, h4').first.inner_text().strip(): e.inner_text() for e in entries.all()}
        for sym, doc in api.get(name, []):
            t = texts.get(sym)
            if t is None: failures.append(f'{where}: no API entry for {sym}'); continue
            if f'{sym}(' not in t: failures.append(f'{where}: the entry of {sym} shows no signature')
            if doc and not set(words(doc.split('\n')[0])) <= set(words(t)): failures.append(f'{where}: the entry of {sym} lacks its docstring')
            checked['api'] += 1
        # equations: MathJax typesets every math element of the page
        n_math = page.locator('.math.notranslate').count()              # Sphinx's math elements
        if n_math:
            try: page.wait_for_function('() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 && '
                                        'document.querySelectorAll(".MathJax, .MathJax_Display").length > 0', timeout=60_000)
            except PlaywrightTimeout: pass                                  # counted as not typeset just below
            typeset = page.evaluate('() => [...document.querySelectorAll(".math.notranslate")]'
                                    '.filter(e => e.querySelector(".MathJax, .MathJax_Display")).length')
            if typeset < n_math: failures.append(f'{where}: {typeset} of {n_math} equations typeset')
            checked['math'] += n_math
        # figures: every image loaded; every HoloViews/Bokeh plot the notebook produced is drawn
        imgs, plots = proc_figures(name, nb)
        broken = page.evaluate('() => [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)')
        if broken: failures.append(f'{where}: images not loaded: {broken}')
        n_imgs = page.locator('.cell_output img').count()
        if n_imgs < imgs: failures.append(f'{where}: {n_imgs} of {imgs} output images shown')
        if plots:
            try: page.locator('canvas').first.wait_for(timeout=60_000)     # Bokeh draws a figure on a canvas
            except PlaywrightTimeout: failures.append(f'{where}: its {plots} HoloViews outputs drew no figure')
            roots = page.evaluate('() => window.Bokeh ? Object.keys(Bokeh.index).length : 0')
            if roots < plots: failures.append(f'{where}: {roots} of {plots} plots drawn')
        checked['images'] += n_imgs; checked['plots'] += plots
        # links and assets: every internal target exists, and so does its anchor; no request left the machine
        hrefs = page.evaluate('() => [...document.querySelectorAll("a[href]")].map(a => a.href)')
        assets = page.evaluate('() => [...document.querySelectorAll("link[href], script[src], img[src]")]'
                               '.map(e => e.href || e.src)')
        for h in hrefs + assets:
            if not h.startswith(site): continue
            target, anchor = urldefrag(h)
            try:
                if target.endswith('.html') or target.endswith('/'): ids = ids_of(target)
                else: urllib.request.urlopen(target, timeout=30).close(); ids = frozenset()
            except OSError as e: failures.append(f'{where}: broken link {h} ({e})'); continue
            if anchor and anchor not in ids: failures.append(f'{where}: link {h}: no element with id {anchor!r}')
            checked['links'] += 1
        failures += [f'{where}: {x}' for x in p.problems]
        checked['pages'] += 1
    print('checked', checked)
    assert not failures, '\n'.join(failures[:200])
    assert checked['pages'] == len(pages) and checked['api'] == sum(len(api.get(n, [])) for n in pages)
    assert checked['plots'] >= 1 and checked['math'] >= 10             # the tutorial's monitor; the methods' formulas

def test_navigation_and_search(site, chromium):
    p = Page(chromium, site)
    page = p.page
    page.goto(site + 'index.html')
    page.locator('nav.bd-links a', has_text='methods.tread').first.click()          # the sidebar
    page.wait_for_url('**/methods.tread.html')
    assert page.locator('h1').first.inner_text().strip().startswith('methods.tread')
    page.locator('nav.bd-links a', has_text='Watch runs train, live').first.click()
    page.wait_for_url('**/tutorials/live_monitor.html')
    page.goto(site + 'search.html?q=TreadPlan')
    hit = page.locator('#search-results a', has_text='methods.tread').first
    hit.wait_for(timeout=60_000)                                   # the search index, read in the browser
    hit.click(); page.wait_for_url('**/methods.tread.html*')
    page.goto(site + 'search.html?q=quickstart+recipe')
    page.locator('#search-results li').first.wait_for(timeout=60_000)
    assert page.locator('#search-results li').count() >= 2
    assert not p.problems, p.problems
