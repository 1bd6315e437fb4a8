"""Cost of logging to the run store: wall time of single log calls, and of the final flush.

Logs `--steps` steps of 5 scalars, plus a tbin row (32 bins) every 10 steps, in a tight loop (no training work in
between) into a store in a temporary folder, once per `--flush-every-s` value: with the default 1 s the writer
thread stays idle during the loop, with 0.01 s it commits while the loop runs and competes with it for the GIL.
Also times a few reads of the finished store. Prints a JSON summary and writes it to
bench/results/store_write-<date>.json.

    python bench/store_write.py [--steps 20000] [--flush-every-s 1.0 0.01] [--no-wal] [--dir DIR]
"""
import argparse, datetime, json, os, platform, sqlite3, tempfile, time
from pathlib import Path
import numpy as np
from fastdit_lab.core import atomic_write
from fastdit_lab.train.store import RunStore

def pct(ns:list) -> dict:
    "p50, p99 and max of the timings `ns` (nanoseconds), in microseconds."
    a = np.asarray(ns) / 1e3
    return dict(p50_us=round(float(np.percentile(a, 50)), 2), p99_us=round(float(np.percentile(a, 99)), 2),
                max_us=round(float(a.max()), 2), n=len(a))

def run(steps:int, flush_every_s:float, wal:bool, folder:Path) -> dict:
    rng = np.random.default_rng(0)
    tbin = rng.random(32)
    edges = np.linspace(0, 1, 33)
    scal_ns, tbin_ns = [], []
    t0 = time.perf_counter()
    st = RunStore(folder, 'w', flush_every_s=flush_every_s, wal=wal)
    for s in range(steps):
        a = time.perf_counter_ns()
        st.log_scalars(s, loss=0.1, loss_ema=0.1, grad_norm=1.0, lr=1e-4, img_per_s=512.0)
        b = time.perf_counter_ns(); scal_ns.append(b - a)
        if s % 10 == 0:
            st.log_tbins(s, 'loss', tbin, edges=edges)
            tbin_ns.append(time.perf_counter_ns() - b)
    t_logged = time.perf_counter()
    st.flush()
    t_flushed = time.perf_counter()
    reads = {}
    for label, kw in (('scalars_all', {}), ('scalars_max_points_1000', dict(max_points=1000))):
        a = time.perf_counter(); ds = st.scalars(**kw); reads[label + '_ms'] = round((time.perf_counter() - a) * 1e3, 2)
    a = time.perf_counter(); st.tbins('loss'); reads['tbins_all_ms'] = round((time.perf_counter() - a) * 1e3, 2)
    a = time.perf_counter(); st.last_step(); reads['last_step_ms'] = round((time.perf_counter() - a) * 1e3, 3)
    st.close()
    size = sum(f.stat().st_size for f in Path(folder).iterdir())
    return dict(log_scalars=pct(scal_ns), log_tbins=pct(tbin_ns), all_log_calls=pct(scal_ns + tbin_ns),
                logging_loop_s=round(t_logged - t0, 3), final_flush_ms=round((t_flushed - t_logged) * 1e3, 2),
                total_s=round(t_flushed - t0, 3), reads=reads, store_bytes=size)

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--steps', type=int, default=20_000)
    p.add_argument('--flush-every-s', type=float, nargs='+', default=[1.0, 0.01])
    p.add_argument('--no-wal', action='store_true')
    p.add_argument('--dir', default=None, help='folder for the store (default: a temporary folder)')
    args = p.parse_args()
    runs = []
    for f in args.flush_every_s:
        with tempfile.TemporaryDirectory(dir=args.dir) as d:
            runs.append(dict(flush_every_s=f, **run(args.steps, f, not args.no_wal, Path(d))))
    out = dict(
        bench='store_write', date=datetime.datetime.now().isoformat(timespec='seconds'),
        machine=dict(platform=platform.platform(), machine=platform.machine(), processor=platform.processor(),
                     python=platform.python_version(), sqlite=sqlite3.sqlite_version, cpus=os.cpu_count()),
        settings=dict(steps=args.steps, scalars_per_step=5, tbin_every=10, tbin_bins=32,
                      wal=not args.no_wal, tight_loop=True),
        runs=runs)
    print(json.dumps(out, indent=1))
    dst = Path(__file__).parent/'results'/f'store_write-{datetime.date.today().isoformat()}.json'
    atomic_write(dst, json.dumps(out, indent=1) + '\n')
    print(f'wrote {dst}')

if __name__ == '__main__': main()
