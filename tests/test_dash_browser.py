"""The dashboards in a real browser (Debian's Chromium driven by Playwright): the SNR explorer (under `panel serve`)
reacts to its widgets, the live monitor (under `fastdit dash`) follows a run that trains in another process while
the page is open, and in JupyterLab the tutorial notebook does the same inline and the SNR explorer answers its
widgets."""
import json, os, re, shutil, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest
from conftest import free_port

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync']
pytestmark = [pytest.mark.ui, pytest.mark.skipif(CHROMIUM is None, reason='Chromium not installed: apt-get install chromium (CI does)')]

def start(args, url, what, cmd=None):
    "Start `python -m fastdit_lab.cli *args` (or `cmd`) and wait until `url` answers."
    cmd = cmd or [sys.executable, '-m', 'fastdit_lab.cli', *args]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for _ in range(240):
        try: urllib.request.urlopen(url, timeout=2); return p
        except OSError: time.sleep(0.5)
        if p.poll() is not None: pytest.fail(f'the {what} exited: ' + p.stdout.read()[-2000:])
    p.kill(); pytest.fail(f'the {what} did not answer at {url}')

def stop(p):
    p.terminate()
    try: p.wait(30)
    except subprocess.TimeoutExpired: p.kill(); p.wait()

class Browser:
    "A Chromium page that records page errors, failed requests and HTTP errors."
    def __enter__(self):
        from playwright.sync_api import sync_playwright
        self.pw = sync_playwright().start()
        self.browser = self.pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        self.page = self.browser.new_page(viewport={'width': 1400, 'height': 1000})
        self.problems = []
        self.page.on('pageerror', lambda e: self.problems.append(f'page error: {e}'))
        self.page.on('requestfailed', lambda r: self.problems.append(f'request failed: {r.url} {r.failure}'))
        self.page.on('response', lambda r: r.status >= 400 and self.problems.append(f'HTTP {r.status}: {r.url}'))
        return self
    def __exit__(self, *exc): self.browser.close(); self.pw.stop()

def test_snr_explorer_renders_and_updates():
    "Served by Panel's own server from `dash/serve.py` (no run folders: the SNR explorer alone)."
    import fastdit_lab.dash.serve as served
    port = free_port(); url = f'http://127.0.0.1:{port}/serve'
    server = start([], url, 'panel server', cmd=[sys.executable, '-m', 'panel', 'serve', served.__file__,
                                                 '--address', '127.0.0.1', '--port', str(port)])
    try:
        with Browser() as b:
            page = b.page
            page.goto(url)
            page.get_by_text('1: DDPM linear β · uniform · s=1').first.wait_for(timeout=30_000)   # the medians table
            assert page.locator('canvas').count() >= 1                                            # the Bokeh plot
            page.get_by_role('combobox').first.select_option('EDM')          # configuration 1 to EDM: the table follows
            page.get_by_text('1: EDM · uniform · s=1').first.wait_for(timeout=30_000)
            assert not b.problems, b.problems
    finally: stop(server)

def shown_step(page) -> int:
    "The step in the monitor's header ('step N / total')."
    return int(re.search(r'step (\d+)', page.get_by_text(re.compile(r'^step \d+$')).first.inner_text()).group(1))

def test_monitor_follows_a_training_run(tmp_path):
    run = tmp_path / 'runs' / 'live'
    plan = json.dumps({'name': 'tread', 'ratio': 0.5, 'start': 1, 'end': 2})
    train = subprocess.Popen([sys.executable, '-m', 'fastdit_lab.cli', 'train', '--recipe', 'quickstart', '--steps', '100000',
                              '--time-budget-s', '240', '--log-every', '2', '--plan', plan, '--routing-every', '10',
                              '--instrument', json.dumps({'name': 'grad_variance', 'every': 10}), '--sample-every', '30',
                              '--sample-n', '16', '--sample-steps', '6', '--ckpt-every', '100000', '--run-dir', str(run)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             # one thread: on a 2-core machine a 2-thread training run starves the dashboard server and
                             # the browser, and the page then falls minutes behind the run
                             env={**os.environ, 'OMP_NUM_THREADS': '1'})
    port = free_port(); url = f'http://127.0.0.1:{port}/'
    server = start(['dash', str(run), '--port', str(port), '--interval', '0.5'], url, 'dashboard server')
    try:
        with Browser() as b:
            page = b.page
            page.goto(url)
            page.get_by_text(re.compile(r'^step \d+$')).first.wait_for(timeout=60_000)     # the run's first log interval
            first, t0 = shown_step(page), time.time()
            while shown_step(page) <= first and time.time() - t0 < 60: time.sleep(0.5)
            assert shown_step(page) > first, 'the step count did not rise within 60 s'
            # the heatmap of per-noise-level gradient variance and the routing maps appear once they are logged
            page.get_by_text('No per-noise-level statistics').first.wait_for(state='hidden', timeout=60_000)
            page.get_by_text('No routing maps').first.wait_for(state='hidden', timeout=60_000)
            page.get_by_text('Newest grid: step').first.wait_for(timeout=90_000)
            assert page.get_by_role('combobox').first.input_value() == 'grad_var'
            assert page.locator('canvas').count() >= 8                     # loss, throughput, heatmap, profile, densities, images
            assert page.get_by_text('Could not draw').count() == 0
            time.sleep(2)
            shot = tmp_path / 'monitor.png'
            page.screenshot(path=str(shot), full_page=True)
            if os.environ.get('FASTDIT_SCREENSHOTS'): shutil.copy(shot, Path(os.environ['FASTDIT_SCREENSHOTS']) / shot.name)
            assert shot.stat().st_size > 50_000                            # a rendered page, not a blank one
            assert not b.problems, b.problems
    finally:
        stop(server); stop(train)

class JupyterLab:
    "JupyterLab serving `folder` (no token), and a Chromium page that opened `notebook` and ran all its cells."
    def __init__(self, folder, notebook:str): self.folder, self.notebook = folder, notebook
    def __enter__(self):
        port = free_port()
        self.lab = subprocess.Popen([sys.executable, '-m', 'jupyterlab', '--no-browser', '--allow-root', f'--port={port}',
                                     '--ServerApp.token=', '--ServerApp.password=', '--ServerApp.disable_check_xsrf=True',
                                     # its own workspace: JupyterLab reopens the files of the last session otherwise
                                     f'--LabApp.workspaces_dir={self.folder}/.workspaces',
                                     f'--notebook-dir={self.folder}'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            for _ in range(120):
                try: urllib.request.urlopen(f'http://127.0.0.1:{port}/lab', timeout=2); break
                except OSError: time.sleep(0.5)
            self.browser = Browser().__enter__()
            page = self.page = self.browser.page
            page.goto(f'http://127.0.0.1:{port}/lab/tree/{self.notebook}')
            page.locator('.jp-NotebookPanel').first.wait_for(timeout=60_000)
            page.wait_for_timeout(3000)                                     # the kernel starts
            page.get_by_text('Run', exact=True).first.click()
            page.get_by_text('Run All Cells', exact=True).first.click()
        except BaseException: self.__exit__(); raise
        return self
    def problems(self):
        "What went wrong in the page; offline, only Panel's optional stylesheets from its CDN may fail (its JS is inlined)."
        return [p for p in self.browser.problems if not (p.startswith('request failed: https://cdn.holoviz.org/') and '.css' in p)]
    def __exit__(self, *exc):
        if hasattr(self, 'browser'): self.browser.__exit__()
        stop(self.lab)

def test_jupyterlab_runs_the_tutorial_with_a_live_monitor(tmp_path):
    "The tutorial notebook in JupyterLab, offline: training on a kernel thread, the monitor below the cell follows it."
    ROOT = Path(__file__).resolve().parents[1]
    shutil.copy(ROOT / 'nbs' / 'tutorials' / 'live_monitor.ipynb', tmp_path / 'live_monitor.ipynb')
    with JupyterLab(tmp_path, 'live_monitor.ipynb') as lab:
        page = lab.page
        page.get_by_text(re.compile(r'^step \d+$')).first.wait_for(timeout=120_000)
        first = shown_step(page)
        page.get_by_text('step 80', exact=True).first.wait_for(timeout=240_000)   # it followed the run to the end
        assert first < 80 and page.locator('canvas').count() >= 8
        assert page.get_by_text('Could not draw').count() == 0
        page.screenshot(path=str(tmp_path / 'jupyterlab.png'))
        assert not lab.problems(), lab.problems()

def test_jupyterlab_shows_the_snr_explorer_inline(tmp_path):
    "The SNR explorer as a cell's output in JupyterLab, offline: it draws, and its widgets talk to the kernel."
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('from fastdit_lab.dash.app import notebook_extension\n'
                                  'from fastdit_lab.dash.snr import snr_explorer\nnotebook_extension()'),
        nbformat.v4.new_code_cell('snr_explorer()')],
        metadata=dict(kernelspec=dict(name='python3', display_name='Python 3', language='python')))   # no kernel dialog
    nbformat.write(nb, tmp_path / 'snr.ipynb')
    with JupyterLab(tmp_path, 'snr.ipynb') as lab:
        page = lab.page
        page.get_by_text('1: DDPM linear β · uniform · s=1').first.wait_for(timeout=120_000)   # the medians table
        assert page.locator('canvas').count() >= 1                                             # the Bokeh plot
        # configuration 1 to EDM (the first select of the cell's output; JupyterLab's toolbar has one too): the kernel redraws
        page.locator('.jp-OutputArea-output').get_by_role('combobox').first.select_option('EDM')
        page.get_by_text('1: EDM · uniform · s=1').first.wait_for(timeout=60_000)
        assert not lab.problems(), lab.problems()
