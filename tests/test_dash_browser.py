"""The dashboards in a real browser (Debian's Chromium driven by Playwright), the way people use them: `fastdit dash
runs/` on a folder of several runs — finished, crashed, just created, and one that trains in another process while
the page is open (and one that appears later) — and, in JupyterLab, the tutorial notebook's dashboard inline, its SNR
explorer's widgets redrawing through the kernel. The SNR explorer is also tested on its own under `panel serve`.

Every wait is on a condition, with a generous ceiling (`WAIT_S`) so that a busy 2-core machine (other jobs, the
training run itself) passes; an idle machine meets each condition in seconds. Screenshots of each page go to
$FASTDIT_SCREENSHOTS when it is set (CI keeps them as artefacts), else to the test's temporary folder."""
import json, os, re, shutil, socket, subprocess, sys, time, urllib.parse, urllib.request
from pathlib import Path
import pytest
from conftest import free_port, needs_chromium

pytestmark = [pytest.mark.ui, needs_chromium]
ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 180                           # ceiling of any one wait, in seconds
STEP = re.compile(r'^step \d+$')       # the bold "step N" of the monitor's header
# every line plotted (inside element `el`, if given), as (x field, x values, y values): what the plots hold, not what
# a label says; each displayed output is a Bokeh document, and its root views sit inside the output's element
LINES = """(el) => { const out = []; for (const doc of window.Bokeh.documents) {
    if (el && !doc.roots().some(r => { const v = Bokeh.index[r.id]; return v && v.el && el.contains(v.el); })) continue;
    for (const m of doc.all_models) {
        if (m.type !== 'GlyphRenderer' || m.glyph.type !== 'Line') continue;
        const d = m.data_source.data, get = k => Array.from(d instanceof Map ? d.get(k) : d[k]);
        out.push([m.glyph.x.field, get(m.glyph.x.field), get(m.glyph.y.field)]); } } return out; }"""

def wait_until(condition, what:str, timeout:float=WAIT_S, every:float=0.5):
    "Poll `condition()` until it is truthy (returning it), or fail saying `what` did not happen within `timeout` s."
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if got := condition(): return got
        except Exception: pass                              # an element between two renders
        time.sleep(every)
    pytest.fail(f'{what} within {timeout:.0f} s')

def start(cmd, url:str, what:str, log:Path) -> subprocess.Popen:
    "Start `cmd` with its output in `log`, wait until its port listens, then until `url` answers (one request)."
    p = subprocess.Popen(cmd, stdout=open(log, 'w'), stderr=subprocess.STDOUT, text=True)
    def listening():
        if p.poll() is not None: pytest.fail(f'the {what} exited: ' + log.read_text()[-2000:])
        with socket.socket() as s: return s.connect_ex(('127.0.0.1', urllib.parse.urlsplit(url).port)) == 0
    try:
        wait_until(listening, f'the {what} did not listen at {url}')
        # one request, waited for: a page request builds a whole session, so retrying on a short timeout would pile up
        # sessions on a busy machine and the server would never catch up
        urllib.request.urlopen(url, timeout=WAIT_S)
    except BaseException: stop(p); raise
    return p

def stop(p):
    p.terminate()
    try: p.wait(30)
    except subprocess.TimeoutExpired: p.kill(); p.wait()

def server_problems(log:Path) -> list[str]:
    "Tracebacks, errors and Bokeh's layout warnings (W-1005 ...) in a server's log."
    return [l for l in log.read_text().splitlines() if re.search(r'Traceback|ERROR|W-10\d\d|Exception', l)]

def screenshot(page, folder:Path, name:str):
    out = Path(os.environ.get('FASTDIT_SCREENSHOTS') or folder)
    out.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(out / f'{name}.png'), full_page=True)

class Page:
    "A fresh Chromium page that records page errors, console errors, failed requests and HTTP errors."
    def __init__(self, browser, ignore=()):
        self.page, self.ignore, self.problems = browser.new_page(viewport={'width': 1400, 'height': 1000}), ignore, []
        self.page.on('pageerror', lambda e: self.problems.append(f'page error: {e}'))
        self.page.on('console', lambda m: m.type == 'error' and self.problems.append(f'console error: {m.text}'))
        self.console = []                  # every console message, kept beside the screenshots (what Bokeh logged)
        self.page.on('console', lambda m: self.console.append(f'{time.time():.2f} {m.type}: {m.text[:1000]}'))
        self.page.on('requestfailed', lambda r: self.problems.append(f'request failed: {r.url} {r.failure}'))
        self.page.on('response', lambda r: r.status >= 400 and self.problems.append(f'HTTP {r.status}: {r.url}'))
    def errors(self): return [p for p in self.problems if not any(re.search(i, p) for i in self.ignore)]
    def shown_step(self) -> int:
        return int(self.page.get_by_text(STEP).first.inner_text().split()[1])
    def source_steps(self, within=None) -> list[int]:      # the newest step of each line plotted over steps
        lines = within.evaluate(LINES) if within is not None else self.page.evaluate(LINES, None)
        return [max(xs) for x, xs, _ in lines if x == 'step' and xs]
    def canvases(self) -> int: return self.page.locator('canvas').count()
    def canvas_sizes(self) -> list: return self.page.locator('canvas').evaluate_all('cs => cs.map(c => [c.width, c.height])')
    def close(self): self.page.close()

# --- a folder of runs, one of them training, served by `fastdit dash` ------------------------------------------------

@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    "runs/: finished (with FID), crashed at step 120 an hour ago, just created (a config, no store), and one training."
    from fastdit_lab.dash.data import demo_store
    root = tmp_path_factory.mktemp('dash') / 'runs'
    demo_store(root / '000-finished', steps=200, fid_every=100)
    crashed = demo_store(root / '001-crashed', steps=300, upto=120, finished=False, seed=1)
    an_hour_ago = time.time() - 3600
    os.utime(crashed / 'store.sqlite', (an_hour_ago, an_hour_ago))
    (root / '002-created').mkdir(); (root / '002-created' / 'config.json').write_text(json.dumps({'recipe': 'sit', 'steps': 100}))
    plan = json.dumps({'name': 'tread', 'ratio': 0.5, 'start': 1, 'end': 2})
    log = root.parent / 'train.log'
    train = subprocess.Popen(
        [sys.executable, '-m', 'fastdit_lab.cli', 'train', '--recipe', 'quickstart', '--steps', '100000', '--time-budget-s', '900',
         '--log-every', '2', '--plan', plan, '--routing-every', '10', '--instrument', json.dumps({'name': 'grad_variance', 'every': 10}),
         '--sample-every', '20', '--sample-n', '16', '--sample-steps', '6', '--ckpt-every', '100000', '--run-dir', str(root / '003-live')],
        stdout=open(log, 'w'), stderr=subprocess.STDOUT,
        # one thread: on a 2-core machine a 2-thread training run starves the dashboard server and the browser
        env={**os.environ, 'OMP_NUM_THREADS': '1'})
    wait_until(lambda: (root / '003-live' / 'store.sqlite').exists() or train.poll() is not None, 'the training run did not start')
    assert train.poll() is None, log.read_text()[-2000:]
    yield root
    stop(train)

@pytest.fixture(scope='module')
def dash(runs):
    "`fastdit dash runs/`, polling every 0.5 s: (url, its log)."
    port = free_port(); url = f'http://127.0.0.1:{port}/'
    log = runs.parent / 'dash.log'
    server = start([sys.executable, '-m', 'fastdit_lab.cli', 'dash', str(runs), '--port', str(port), '--interval', '0.5'],
                   url, 'dashboard server', log)
    yield url, log
    stop(server)

def open_dashboard(chromium, url) -> Page:
    p = Page(chromium)
    t0 = time.time(); p.page.goto(url)
    p.page.get_by_text(STEP).first.wait_for(timeout=WAIT_S * 1000)
    p.load_s = time.time() - t0
    return p

def test_monitor_follows_the_live_run(chromium, dash, tmp_path):
    "It opens on the run that is training; its step and its plots' data advance, twice; every tab draws."
    url, log = dash
    p = open_dashboard(chromium, url)
    page = p.page
    assert page.get_by_text('003-live · quickstart').first.is_visible()          # the newest-written run is shown first
    s0 = p.shown_step()
    s1 = wait_until(lambda: (s := p.shown_step()) > s0 and s, 'the step did not advance')
    s2 = wait_until(lambda: (s := p.shown_step()) > s1 and s, 'the step did not advance a second time')
    wait_until(lambda: max(p.source_steps()) >= s2, "the loss curve's data did not reach the shown step")
    assert page.get_by_text(re.compile(r'ETA \d+:\d\d')).first.is_visible() and page.get_by_text(re.compile(r'· live$')).count()
    screenshot(page, tmp_path, 'monitor-live')
    # each tab with a text only it has: the tabs render when opened
    for tab, text in (('System', 'Throughput and memory'), ('Sampler', 'Where the training signal goes'),
                      ('Per noise level', 'statistic'), ('Token plan', 'Which tokens each block processed')):
        page.get_by_text(tab, exact=True).first.click()
        page.get_by_text(text, exact=True).first.wait_for(timeout=WAIT_S * 1000)
        wait_until(lambda: p.canvases(), f'the {tab} tab drew no plot')
        # no plot without a size (the throughput plots once collapsed to nothing; legends have small canvases of their own)
        wait_until(lambda: (sizes := p.canvas_sizes()) and all(w and h for w, h in sizes)
                   and any(w >= 400 and h >= 150 for w, h in sizes), f'a plot of the {tab} tab has no size')
        if tab == 'Per noise level':                                             # the heatmap shows grad_var first
            assert page.get_by_role('combobox').nth(1).input_value() == 'gradient variance'
        page.wait_for_timeout(1000)                                              # painted, for the screenshot
        screenshot(page, tmp_path, f'monitor-{tab.lower().replace(" ", "-")}')
    page.get_by_text('Samples', exact=True).first.click()
    wait_until(lambda: page.get_by_text(re.compile(r'^step \d+, one row per class')).count(), 'no sample grid was shown')
    screenshot(page, tmp_path, 'monitor-samples')
    assert page.get_by_text('Could not draw').count() == 0
    assert not p.errors(), p.errors()
    assert not server_problems(log), server_problems(log)
    p.close()

def test_selector_switches_runs_and_says_where_each_is(chromium, dash, runs, tmp_path):
    "Switching changes the header and the plots' data; finished, crashed and not-started runs say so; new runs join."
    url, log = dash
    p = open_dashboard(chromium, url)
    page, select = p.page, p.page.get_by_role('combobox').first
    live_steps = p.source_steps()
    select.select_option('000-finished')
    page.get_by_text('000-finished · quickstart').first.wait_for(timeout=WAIT_S * 1000)
    page.get_by_text(re.compile('finished at step 200$')).first.wait_for(timeout=WAIT_S * 1000)
    wait_until(lambda: max(p.source_steps()) == 200 and p.source_steps() != live_steps, "the plots did not show the finished run's data")
    screenshot(page, tmp_path, 'switched-finished')
    with page.expect_download(timeout=WAIT_S * 1000) as download: page.get_by_text('NetCDF', exact=True).first.click()
    import xarray as xr                                                          # the whole store, from the page
    with xr.open_dataset(download.value.path()) as nc: assert int(nc['step'].max()) == 200 and 'loss_total' in nc
    with page.expect_download(timeout=WAIT_S * 1000) as download: page.get_by_text('CSV', exact=True).first.click()
    csv = Path(download.value.path()).read_text().splitlines()                 # the loss view's data
    assert csv[0] == 'step,loss/total,loss/mse' and csv[-1].startswith('200,'), csv[:2]
    select.select_option('001-crashed')
    page.get_by_text(re.compile(r'stopped at step 120, last write \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(\d+ min ago\)$')).first.wait_for(timeout=WAIT_S * 1000)
    wait_until(lambda: max(p.source_steps()) == 120, "the plots did not show the crashed run's data")
    screenshot(page, tmp_path, 'switched-crashed')
    select.select_option('002-created')
    page.get_by_text(re.compile('wait until the run has started')).first.wait_for(timeout=WAIT_S * 1000)
    from fastdit_lab.dash.data import demo_store
    demo_store(runs / '004-appeared', steps=50)                                 # a run started after the page opened
    wait_until(lambda: '004-appeared' in select.locator('option').all_inner_texts(), 'the new run did not join the selector')
    select.select_option('003-live')
    s0 = wait_until(lambda: page.get_by_text('003-live · quickstart').first.is_visible() and p.shown_step(), 'the live run did not come back')
    wait_until(lambda: p.shown_step() > s0, 'the live run did not advance after switching back')
    assert page.get_by_text('Could not draw').count() == 0
    assert not p.errors(), p.errors()
    assert not server_problems(log), server_problems(log)
    p.close()

def test_compare_and_snr_tabs_draw(chromium, dash, tmp_path):
    "Compare runs overlays the chosen runs with their config diff; the SNR explorer draws and answers its widgets."
    url, log = dash
    p = open_dashboard(chromium, url)
    page = p.page
    page.get_by_text('Compare runs', exact=True).first.click()
    page.get_by_text('What differs between their configs').first.wait_for(timeout=WAIT_S * 1000)
    wait_until(lambda: p.canvases() and len(p.source_steps()) >= 2, 'the comparison did not draw two runs')
    assert page.get_by_text('seed', exact=True).count()                          # the demo runs differ in their seeds
    screenshot(page, tmp_path, 'compare')
    page.get_by_text('SNR explorer', exact=True).first.click()
    page.get_by_text('1: DDPM linear β · uniform · s=1').first.wait_for(timeout=WAIT_S * 1000)
    wait_until(lambda: p.canvases(), 'the SNR explorer did not draw')
    screenshot(page, tmp_path, 'snr')
    assert page.get_by_text('Could not draw').count() == 0
    assert not p.errors(), p.errors()
    assert not server_problems(log), server_problems(log)
    p.close()

def test_snr_explorer_under_panel_serve(chromium, tmp_path):
    "`panel serve dash/serve.py` (at /serve, no run folders): the SNR explorer alone, reacting to its widgets."
    import fastdit_lab.dash.serve as served
    port = free_port(); url = f'http://127.0.0.1:{port}/serve'
    server = start([sys.executable, '-m', 'panel', 'serve', served.__file__, '--address', '127.0.0.1', '--port', str(port)],
                   url, 'panel server', tmp_path / 'panel.log')
    try:
        p = Page(chromium)
        p.page.goto(url)
        p.page.get_by_text('1: DDPM linear β · uniform · s=1').first.wait_for(timeout=WAIT_S * 1000)   # the medians table
        assert p.canvases() >= 1                                                                       # the Bokeh plot
        p.page.get_by_role('combobox').first.select_option('EDM')          # configuration 1 to EDM: the table follows
        p.page.get_by_text('1: EDM · uniform · s=1').first.wait_for(timeout=WAIT_S * 1000)
        assert not p.errors(), p.errors()
        p.close()
    finally: stop(server)
    assert not server_problems(tmp_path / 'panel.log'), server_problems(tmp_path / 'panel.log')

# --- a DyDiT run: its gates as training and as sampling run them --------------------------------------------------------

# the titles of every plot on the page
TITLES = """() => Array.from(window.Bokeh.documents).flatMap(doc => Array.from(doc.all_models)).filter(m => m.type === 'Title').map(m => m.text)"""

def test_dydit_run_shows_its_gates_as_training_and_sampling_run_them(chromium, tmp_path):
    """A DyDiT run whose gates start to close: the Token plan tab draws the routing maps under training gates and under
    sampling gates, the widths per noise level, and both FLOPs-ratio curves with the values its store holds."""
    import numpy as np
    from conftest import run_cli
    from fastdit_lab.train.store import RunStore
    run = tmp_path / 'runs' / 'dydit'
    # a FLOPs target of 0.3 from the first step at a high learning rate: within 20 steps the widths shrink and the token
    # gates start to close (at init every gate is open, where the training and sampling gates agree and every map is full)
    r = run_cli('train', '--recipe', 'dydit', '--model', 'DyDiT-T/4', '--image-size', '16', '--batch-size', '8', '--steps', '20',
                '--log-every', '5', '--routing-every', '10', '--sample-n', '10', '--sample-steps', '3', '--ckpt-every', '20',
                '--lr', '5e-3', '--stages', '[]', '--losses', json.dumps([dict(name='flops', weight=5.0, target=0.3, hold_steps=0, warmup_steps=0)]),
                '--run-dir', run, env={'OMP_NUM_THREADS': '1'})
    assert r.returncode == 0, r.stderr[-3000:]
    with RunStore(run / 'store.sqlite') as st:
        sc = st.scalars()
        ratios = {n: sc[n].dropna('step') for n in ('plan/routing_flops_ratio', 'plan/routing_flops_ratio_sampling')}
        maps = {n: st.array(n, 20).values for n in ('plan/routing_map', 'plan/routing_map_sampling')}
    train, sampling = (ratios[n].values for n in ratios)
    assert train.max() < 0.9 and not np.allclose(train, sampling), ratios          # the two gatings differ ...
    assert all(0 < m.mean() < 1 for m in maps.values()) and (maps['plan/routing_map'] != maps['plan/routing_map_sampling']).any()
    port = free_port(); url = f'http://127.0.0.1:{port}/'
    log = tmp_path / 'dash.log'
    server = start([sys.executable, '-m', 'fastdit_lab.cli', 'dash', str(run.parent), '--port', str(port)], url, 'dashboard server', log)
    try:
        p = open_dashboard(chromium, url)
        page = p.page
        page.get_by_text('Token plan', exact=True).first.click()
        for title in ('Which tokens each block processed', 'Which tokens each block processes when sampling',
                      'Width each block keeps, per noise level'):
            page.get_by_text(title, exact=True).first.wait_for(timeout=WAIT_S * 1000)
        # both mosaics show the newest maps: one caption each, over an image of non-zero size
        caption = page.get_by_text(re.compile(r'^step 20: blocks 0–5 →, one image per row'))
        wait_until(lambda: caption.count() == 2, 'the two routing mosaics did not show step 20')
        # ... and so do the two mosaics (each a drawn image; a view showing the other's maps would repeat it)
        shown = "is => is.filter(i => i.naturalWidth * i.naturalHeight).map(i => i.src)"
        wait_until(lambda: len(set(page.locator('img').evaluate_all(shown))) >= 2, 'the two routing mosaics did not draw two images')
        # each stored FLOPs ratio is a line of its own in the plots, at the steps and values the store holds
        def drawn(series):
            return any(list(xs) == [int(s) for s in series.step.values] and np.allclose(ys, series.values, atol=1e-6)
                       for _, xs, ys in page.evaluate(LINES))
        for name, series in ratios.items(): wait_until(lambda: drawn(series), f'{name} was not drawn with its stored values')
        for label in ('training gates', 'sampling gates'):                     # each under the label its view gives it
            wait_until(lambda: f'FLOPs ratio on the fixed images, {label}' in page.evaluate(TITLES), f'no plot is titled by its {label}')
        page.wait_for_timeout(1000)
        screenshot(page, tmp_path, 'dydit-token-plan')
        assert page.get_by_text('Could not draw').count() == 0
        assert not p.errors(), p.errors()
        p.close()
    finally: stop(server)
    assert not server_problems(log), server_problems(log)

# --- JupyterLab ------------------------------------------------------------------------------------------------------

class JupyterLab:
    "JupyterLab serving `folder` (no token), and a Chromium page that opened `notebook` and ran all its cells."
    # offline, only Panel's optional stylesheets from its CDN may fail (its JavaScript is inlined)
    IGNORE = (r'^request failed: https://cdn\.holoviz\.org/.*\.css', r'^console error: Failed to load resource')
    def __init__(self, browser, folder, notebook:str): self.browser, self.folder, self.notebook = browser, folder, notebook
    def __enter__(self):
        port = free_port()
        self.log = self.folder / 'jupyterlab.log'
        self.lab = start([sys.executable, '-m', 'jupyterlab', '--no-browser', '--allow-root', f'--port={port}',
                          '--ServerApp.token=', '--ServerApp.password=', '--ServerApp.disable_check_xsrf=True',
                          # its own workspace: JupyterLab reopens the files of the last session otherwise
                          f'--LabApp.workspaces_dir={self.folder}/.workspaces', f'--notebook-dir={self.folder}'],
                         f'http://127.0.0.1:{port}/lab', 'JupyterLab', self.log)
        try:
            self.p = Page(self.browser, ignore=self.IGNORE)
            page = self.page = self.p.page
            page.goto(f'http://127.0.0.1:{port}/lab/tree/{self.notebook}')
            page.locator('.jp-NotebookPanel').first.wait_for(timeout=WAIT_S * 1000)
            page.wait_for_timeout(3000)                      # the kernel starts (cells run all the same: they queue)
            page.get_by_text('Run', exact=True).first.click()
            page.get_by_text('Run All Cells', exact=True).first.click()
        except BaseException: self.__exit__(); raise
        return self
    def output(self): return self.page.locator('.jp-OutputArea-output')
    def output_of(self, source:str):
        "The output of the code cell whose source holds `source`."
        return self.page.locator('.jp-CodeCell').filter(has_text=source).locator('.jp-OutputArea-output').first
    def tracebacks(self) -> list[str]:
        "Cell outputs with a Python traceback (a kernel-side error of the page's widgets lands in the last output)."
        return [t[-1500:] for t in self.output().all_inner_texts() if 'Traceback' in t]
    def __exit__(self, *exc):
        if hasattr(self, 'p'):
            (self.folder / 'console.log').write_text('\n'.join(self.p.console))
            self.p.close()
        stop(self.lab)

def test_jupyterlab_runs_the_tutorial_dashboard(chromium, tmp_path):
    "The tutorial in JupyterLab, offline: a run trains on a kernel thread, its monitor follows it, the selector switches."
    shutil.copy(ROOT / 'nbs' / 'tutorials' / 'live_monitor.ipynb', tmp_path / 'live_monitor.ipynb')
    with JupyterLab(chromium, tmp_path, 'live_monitor.ipynb') as lab:
        page, p = lab.page, lab.p
        live = lab.output_of('app = Dashboard([runs], interval=1.0)')   # the live view; the last cell opens another
        page.get_by_text(STEP).first.wait_for(timeout=WAIT_S * 2 * 1000)        # the short run first trains to its end
        s0 = p.shown_step()
        s1 = wait_until(lambda: (s := p.shown_step()) > s0 and s, 'the step did not advance')
        wait_until(lambda: p.shown_step() > s1, 'the step did not advance a second time')
        assert page.get_by_text('001-live · quickstart').first.is_visible()
        screenshot(page, tmp_path, 'jupyterlab-live')
        page.get_by_text(re.compile('finished at step 80$')).first.wait_for(timeout=WAIT_S * 2 * 1000)   # not "live" after the end
        wait_until(lambda: max(p.source_steps(live)) == 80, "the loss curve's data did not reach the last step")
        lab.output().get_by_text('System', exact=True).first.click()                # every system curve to the end
        wait_until(lambda: (steps := p.source_steps(live)) and min(steps) == 80, 'a system curve stopped before the last step')
        lab.output().get_by_text('Per noise level', exact=True).first.click()
        lab.output().get_by_text('statistic', exact=True).first.wait_for(timeout=WAIT_S * 1000)
        wait_until(lambda: lab.output().get_by_role('combobox').nth(1).input_value() == 'gradient variance',
                   'the heatmap did not show the gradient variance')
        page.wait_for_timeout(1000); screenshot(page, tmp_path, 'jupyterlab-per-noise-level')
        lab.output().get_by_text('Loss', exact=True).first.click()                  # back to a tab shown before
        lab.output().get_by_role('combobox').first.select_option('000-short')
        page.get_by_text('000-short · quickstart').first.wait_for(timeout=WAIT_S * 1000)
        page.get_by_text(re.compile('finished at step 30$')).first.wait_for(timeout=WAIT_S * 1000)
        wait_until(lambda: max(p.source_steps(live)) == 30, "the plots did not show the short run's data")
        lab.output().get_by_text('Compare runs', exact=True).first.click()
        page.get_by_text('What differs between their configs').first.wait_for(timeout=WAIT_S * 1000)
        wait_until(lambda: page.get_by_text('plan.name', exact=True).count(), 'the config diff did not show the plan')
        screenshot(page, tmp_path, 'jupyterlab-compare')
        lab.output().get_by_text('SNR explorer', exact=True).first.click()
        page.get_by_text('1: DDPM linear β · uniform · s=1').first.wait_for(timeout=WAIT_S * 1000)   # its medians table
        # its widgets talk to the kernel: configuration 1 to EDM (the first select offering it), the kernel redraws
        live.get_by_role('combobox').filter(has=page.locator('option', has_text='EDM')).first.select_option('EDM')
        page.get_by_text('1: EDM · uniform · s=1').first.wait_for(timeout=WAIT_S * 1000)
        screenshot(page, tmp_path, 'jupyterlab-snr')
        lab.output().get_by_text('Monitor', exact=True).first.click()               # and back to the monitor
        page.get_by_text(re.compile('finished at step 30$')).first.wait_for(timeout=WAIT_S * 1000)
        opened_after = page.locator('.jp-CodeCell').last.locator('.jp-OutputArea-output').first   # the tutorial's last cell
        opened_after.get_by_text(re.compile('finished at step 80$')).first.wait_for(timeout=WAIT_S * 1000)
        wait_until(lambda: max(p.source_steps(opened_after)) == 80, 'the dashboard opened after the run did not show it finished')
        assert page.get_by_text('Could not draw').count() == 0
        assert not lab.tracebacks(), lab.tracebacks()                              # none in the cells' outputs
        assert not p.errors(), p.errors()
