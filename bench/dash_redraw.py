"""Cost of the dashboard on a folder of 12 runs, 2 of them training: page load, run switch and worst-case redraw.

Builds `--runs` synthetic run stores (`dash.data.demo_store`: the trainer's metric names, scalars every log interval,
per-noise-level statistics and arrays at their intervals) of `--steps` steps; `--live` of them keep growing while
the benchmark runs (a writer process each appends one log interval every `--live-every-s` seconds, with
per-noise-level statistics and a sample grid and routing map at their intervals). Then, with `fastdit dash` serving
the folder (`--interval` s between polls) to Debian's Chromium driven by Playwright:

- `page_load_s`: from opening the page to the monitor showing its run's step and its loss plot drawn, on a fresh
  page each time (`--loads` times);
- `run_switch_s`: from choosing another run in the selector to its header and its loss curve's data (the newest
  step in the plot's source) being that run's, for `--switches` switches through the runs;

and in this process, on a `RunMonitor` of a live store rendered into a Bokeh document with every tab's views
shown and no throttle (the worst case: every view redraws on every poll), each poll batched as a served
session batches it (`dash.views.batched`: the document's models recomputed once per poll):

- `redraw_s`: a writer commits one log interval with everything new (scalars, per-noise-level statistics, a sample
  grid and a routing map), then one poll redraws every view; median and max of `--rounds`.

Targets on a 2-core machine: page load ≤ 3 s, run switch ≤ 2 s, redraw ≤ 1 s (medians). The 1-minute load average
is recorded: the machine may be shared.

    python bench/dash_redraw.py [--runs 12] [--live 2] [--steps 20000] [--log-every 10] [--rounds 10]
"""
import argparse, os, re, shutil, socket, statistics, subprocess, sys, tempfile, textwrap, time, urllib.request
from pathlib import Path
from common import write_result

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync']
SOURCE_STEPS = """() => { const out = []; for (const doc of window.Bokeh.documents) for (const m of doc.all_models) {
    if (m.type !== 'GlyphRenderer' || m.glyph.type !== 'Line') continue;
    const d = m.data_source.data, col = d instanceof Map ? d.get('step') : d['step'];
    if (col && col.length) out.push(Math.max(...Array.from(col))); } return out; }"""
# a live run: appends one log interval every `every_s` seconds, as a training process would
WRITER = textwrap.dedent("""
    import sys, time
    from fastdit_lab.dash.data import demo_step
    from fastdit_lab.train.store import RunStore
    path, start, total, log_every, every_s = sys.argv[1], *map(int, sys.argv[2:5]), float(sys.argv[5])
    with RunStore(path, 'w') as st:
        for s in range(start + log_every, total + 1, log_every):
            t = time.perf_counter()
            demo_step(st, s, total, tbins=s % (10 * log_every) == 0, arrays=s % (50 * log_every) == 0)
            st.flush(); time.sleep(max(0.0, every_s - (time.perf_counter() - t)))
""")

def stats(xs) -> dict: return dict(median=round(statistics.median(xs), 3), max=round(max(xs), 3), n=len(xs))

def build(root:Path, a) -> list[str]:
    "The run folders: the first `runs - live` finished, the last `live` half-way and growing (started separately)."
    from fastdit_lab.dash.data import demo_store
    names = []
    for i in range(a.runs):
        live = i >= a.runs - a.live
        name = f'{i:03d}-{"live" if live else "done"}'
        steps = a.steps + i * a.log_every                              # each run its own last step, to tell them apart
        demo_store(root / name, steps=steps, log_every=a.log_every, tbin_every=10 * a.log_every,
                   array_every=50 * a.log_every, upto=a.steps // 2 if live else None, finished=not live,
                   fid_every=a.steps // 4, seed=i)
        names.append(name)
    return names

def wait(cond, timeout:float=300.0, every:float=0.02):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            if cond(): return time.perf_counter() - t0
        except Exception: pass
        time.sleep(every)
    raise TimeoutError(f'not within {timeout} s')

def browser_times(root:Path, names:list[str], a) -> dict:
    "Page loads and run switches in Chromium against `fastdit dash root`."
    from playwright.sync_api import sync_playwright
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    url = f'http://127.0.0.1:{port}/'
    server = subprocess.Popen([sys.executable, '-m', 'fastdit_lab.cli', 'dash', str(root), '--port', str(port),
                               '--interval', str(a.interval)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: socket.create_connection(('127.0.0.1', port), 1).close() is None)
        urllib.request.urlopen(url, timeout=300)                      # the first session imports what it needs
        step = re.compile(r'^step \d+$')
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            loads = []
            for _ in range(a.loads):
                page = browser.new_page(viewport={'width': 1400, 'height': 1000})
                t0 = time.perf_counter(); page.goto(url)
                wait(lambda: page.get_by_text(step).first.is_visible() and page.locator('canvas').count() > 0)
                loads.append(time.perf_counter() - t0)
                page.close()
            page = browser.new_page(viewport={'width': 1400, 'height': 1000})
            page.goto(url); wait(lambda: page.get_by_text(step).first.is_visible())
            select, shown = page.get_by_role('combobox').first, select_value(page)
            switches, order = [], [n for n in names if n != shown]
            for name in (order * a.switches)[:a.switches]:
                last = last_step(root / name)
                t0 = time.perf_counter(); select.select_option(name)
                wait(lambda: page.get_by_text(f'{name} · quickstart').first.is_visible()
                     and max(page.evaluate(SOURCE_STEPS)) >= last)
                switches.append(time.perf_counter() - t0)
            browser.close()
        return dict(page_load_s=stats(loads), run_switch_s=stats(switches))
    finally:
        server.terminate(); server.wait(30)

def select_value(page) -> str: return page.get_by_role('combobox').first.input_value()

def last_step(run:Path) -> int:
    from fastdit_lab.train.store import RunStore
    with RunStore(run) as st: return st.last_step()

def redraw_times(root:Path, a) -> dict:
    "Worst-case redraws of a monitor of a growing store, every view on the page and none throttled."
    import panel as pn
    from bokeh.document import Document
    from panel.io.document import hold
    from panel.io.state import set_curdoc
    from fastdit_lab.dash.data import demo_step
    from fastdit_lab.dash.monitor import RunMonitor
    from fastdit_lab.train.store import RunStore
    run = root / 'redraw'
    from fastdit_lab.dash.data import demo_store
    demo_store(run, steps=a.steps, log_every=a.log_every, tbin_every=10 * a.log_every, array_every=50 * a.log_every,
               upto=a.steps // 2, finished=False)
    m = RunMonitor(run, start=False, slow_period_s=0)
    doc = Document(); doc.add_root(m.__panel__().get_root(doc))
    for i in range(len(m.tabs)): m.tabs.active = i                   # every tab's plots exist in the document...
    for v in m.views.values(): v.shown = True                         # ...and every view draws on every poll
    times, s = [], a.steps // 2
    with RunStore(run, 'w') as st:
        for _ in range(a.rounds):
            s += a.log_every
            demo_step(st, s, a.steps, tbins=True, arrays=True)        # everything new: every view redraws
            st.flush()
            # as a served session runs its periodic callback: with the document as curdoc and its events held
            # (dash.views.batched), so Bokeh recomputes the document's models once per poll, not once per plot
            t0 = time.perf_counter()
            with set_curdoc(doc), hold(doc, freeze=True): changed = m.refresh()
            times.append(time.perf_counter() - t0)
            assert 'step' in changed and m.data.step == s, 'the poll missed the new step'
    m.stop()
    return dict(redraw_s=stats(times), views=len(m.views))

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--runs', type=int, default=12); ap.add_argument('--live', type=int, default=2)
    ap.add_argument('--steps', type=int, default=20_000); ap.add_argument('--log-every', type=int, default=10)
    ap.add_argument('--live-every-s', type=float, default=0.5, help='seconds between the live runs\' log intervals')
    ap.add_argument('--interval', type=float, default=1.0, help='seconds between the dashboard\'s polls')
    ap.add_argument('--loads', type=int, default=5); ap.add_argument('--switches', type=int, default=10)
    ap.add_argument('--rounds', type=int, default=10)
    ap.add_argument('--dir', default=None, help='folder for the runs (default: a temporary one)')
    a = ap.parse_args()
    if CHROMIUM is None: sys.exit('dash_redraw needs Chromium (apt-get install chromium) for the page timings.')
    root = Path(a.dir or tempfile.mkdtemp()) / 'runs'
    t0 = time.perf_counter(); names = build(root, a); built = time.perf_counter() - t0
    writers = [subprocess.Popen([sys.executable, '-c', WRITER, str(root / n), str(a.steps // 2), str(a.steps),
                                 str(a.log_every), str(a.live_every_s)]) for n in names[a.runs - a.live:]]
    try:
        load = os.getloadavg()[0]
        results = dict(build_s=round(built, 1), **browser_times(root, names, a), **redraw_times(root.parent, a))
        results['load_average_1min'] = [round(load, 2), round(os.getloadavg()[0], 2)]    # at the start and the end
    finally:
        for w in writers: w.terminate()
    summary = dict(page_load_under_3s=results['page_load_s']['median'] <= 3.0,
                   run_switch_under_2s=results['run_switch_s']['median'] <= 2.0,
                   redraw_under_1s=results['redraw_s']['median'] <= 1.0)
    print(results, summary, sep='\n')
    print('wrote', write_result('dash_redraw', vars(a), results, summary=summary))

if __name__ == '__main__': main()
