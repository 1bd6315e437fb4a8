"""Cost of the live monitor on a long run: its first load, one redraw, and an idle poll, for a 10⁶-step store beside a
10³-step one, in one process.

Builds run stores of `--steps` and `--small-steps` steps through the trainer's writer (`RunStore`): scalars every
`--log-every` steps (loss, two terms, lr, grad_norm, img_per_s, mem_gb, train_seconds), per-noise-level grad_var,
loss_bin and u_density every `--tbin-every` steps, a routing map and a sample grid every `--array-every` steps. Then,
for each store, a `RunMonitor` rendered into a Bokeh document (the objects a served page holds) measures:

- `first_load_s`: building the monitor, i.e. its first poll of the whole (thinned) history and the first draw;
- `redraw_s`: a writer appends one logged step (scalars, tbins, arrays), then one poll and every view redrawn, the
  slow-changing views included (their 5 s throttle is off here, so this is the worst case per browser update);
  median and max of `--rounds`;
- `idle_poll_ms`: a poll when nothing was written since the last one.

    python bench/dash_redraw.py [--steps 1000000] [--small-steps 1000] [--log-every 1] [--rounds 10]
"""
import argparse, statistics, tempfile, time
from pathlib import Path
import numpy as np
from common import write_result

def build(path:Path, steps:int, log_every:int, tbin_every:int, array_every:int) -> float:
    "Write a synthetic run of `steps` steps to `path`; returns the seconds it took."
    from fastdit_lab.train.store import RunStore
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    edges, bins = np.linspace(0, 1, 11), rng.random(10)
    with RunStore(path, 'w', flush_every_s=5.0) as st:
        st.set_meta('config', dict(recipe='tread', model='DiT-XL/2', steps=steps, batch_size=256, process={'name': 'edm'},
                                   sampler={'name': 'edm_lognormal'}, data_std=None))
        for s in range(log_every, steps + 1, log_every): add_step(st, s, tbin_every, array_every, edges, bins)
    return time.perf_counter() - t0

def add_step(st, s:int, tbin_every:int, array_every:int, edges, bins):
    loss = 1 / (1 + s) ** 0.3
    st.log_scalars(s, loss=loss, mse=loss * 0.9, vlb=loss * 0.1, lr=1e-4, grad_norm=1.0, img_per_s=900.0, mem_gb=40.0,
                   train_seconds=s * 0.3)
    if s % tbin_every == 0:
        for k in ('grad_var', 'loss_bin'): st.log_tbins(s, k, bins * (1 + s % 7), edges=edges)
        st.log_tbins(s, 'u_density', np.ones(50), edges=np.linspace(0, 1, 51))
    if s % array_every == 0:
        st.log_array(s, 'routing_map', (np.arange(4 * 28 * 16 * 16).reshape(4, 28, 16, 16) + s) % 2)
        st.log_array(s, 'routing_images', np.zeros((4, 32, 32, 4), np.float32) + s % 3)
        st.log_array(s, 'samples', np.full((274, 274, 3), s % 255, np.uint8))

def measure(path:Path, steps:int, a) -> dict:
    import panel as pn
    from bokeh.document import Document
    from fastdit_lab.dash.monitor import RunMonitor, bokeh_backend
    from fastdit_lab.train.store import RunStore
    bokeh_backend()
    t0 = time.perf_counter()
    m = RunMonitor(path, start=False, interval=1.0)
    doc = Document(); doc.add_root(m.__panel__().get_root(doc))
    first = time.perf_counter() - t0
    pn.state.curdoc = doc                                    # as in a server session: the monitor's document is current
    for v in m.views: v.min_period = 0.0                   # every view redraws on every update: the worst case
    edges, bins = np.linspace(0, 1, 11), np.random.default_rng(1).random(10)
    redraws, s = [], steps
    with RunStore(path, 'w') as st:
        for _ in range(a.rounds):
            s += a.log_every
            add_step(st, s, 1, 1, edges, bins)              # scalars, tbins and arrays all new: every view redraws
            st.flush()
            t = time.perf_counter(); u = m.refresh(); redraws.append(time.perf_counter() - t)
            assert u.step == s and 'routing_map' in u.arrays and 'grad_var' in u.tbins, 'the poll missed the new step'
    t = time.perf_counter()
    for _ in range(100): m.refresh()
    pn.state.curdoc = None
    idle = (time.perf_counter() - t) / 100
    kept = dict(curve_rows=len(m.data.scalars), heatmap_rows=int(m.data.tbins['grad_var'].sizes['step']))
    m.stop()
    return dict(first_load_s=round(first, 3), redraw_median_s=round(statistics.median(redraws), 4),
                redraw_max_s=round(max(redraws), 4), idle_poll_ms=round(idle * 1000, 3), kept=kept,
                store_mb=round(Path(path, 'store.sqlite').stat().st_size / 1e6, 1))

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--steps', type=int, default=1_000_000); ap.add_argument('--small-steps', type=int, default=1000)
    ap.add_argument('--log-every', type=int, default=1); ap.add_argument('--tbin-every', type=int, default=100)
    ap.add_argument('--array-every', type=int, default=5000); ap.add_argument('--rounds', type=int, default=10)
    ap.add_argument('--dir', default=None, help='folder for the stores (default: a temporary one)')
    a = ap.parse_args()
    root = Path(a.dir or tempfile.mkdtemp())
    results = []
    for n in (a.small_steps, a.steps):
        path = root / f'run-{n}'
        built = build(path, n, a.log_every, a.tbin_every, min(a.array_every, n))
        r = dict(steps=n, build_s=round(built, 1), **measure(path, n, a))
        print(r, flush=True); results.append(r)
    small, big = results
    summary = dict(redraw_ratio_big_over_small=round(big['redraw_median_s'] / small['redraw_median_s'], 2),
                   first_load_ratio=round(big['first_load_s'] / small['first_load_s'], 2),
                   redraw_under_1s=big['redraw_max_s'] < 1.0)
    print(summary)
    print('wrote', write_result('dash_redraw', vars(a), results, summary=summary))

if __name__ == '__main__': main()
