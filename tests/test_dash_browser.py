"""The SNR explorer in a real browser: `fastdit dash snr` serves it, Chromium renders it, and moving a widget
changes the plotted configuration."""
import os, shutil, subprocess, sys, time, urllib.request
import pytest
from conftest import free_port

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync']
pytestmark = [pytest.mark.ui, pytest.mark.skipif(CHROMIUM is None, reason='Chromium not installed: apt-get install chromium (CI does)')]

@pytest.fixture
def served():
    port = free_port()
    p = subprocess.Popen([sys.executable, '-m', 'fastdit_lab.cli', 'dash', 'snr', '--port', str(port)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f'http://127.0.0.1:{port}/'
    for _ in range(120):
        try: urllib.request.urlopen(url, timeout=2); break
        except OSError: time.sleep(0.5)
        if p.poll() is not None: pytest.fail('the dashboard server exited: ' + p.stdout.read()[-2000:])
    yield url
    p.terminate(); p.wait(10)

def test_snr_explorer_renders_and_updates(served):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        errors = []; page.on('pageerror', lambda e: errors.append(str(e)))
        page.goto(served)
        page.get_by_text('1: DDPM linear β · uniform · s=1').first.wait_for(timeout=30_000)   # the medians table
        assert page.locator('canvas').count() >= 1                                            # the Bokeh plot
        # switch configuration 1 to the EDM process: the table follows
        page.get_by_role('combobox').first.select_option('EDM')
        page.get_by_text('1: EDM · uniform · s=1').first.wait_for(timeout=30_000)
        assert not errors, errors
        browser.close()
