"""Races between training configurations on real data: each arm and seed trains from scratch, then draws samples and
scores the project's proxy FID and class accuracy (`fastdit_lab.eval`). Used by the method benchmarks.

A race split over processes (one seed per core, or arms taken from an earlier race with the same settings) is joined
into one result with `python bench/race.py merge NAME FILE... [--rename OLD=NEW] [--note TEXT]`: every row of every
file, each with the file, commit and machine it came from, and the summary table over all of them.

Two budgets: `--budget S` gives every arm the same training seconds (sampler overheads included), which is only
fair on a quiet machine; `--steps N` gives every arm N optimizer steps (or, with per-arm `steps` from a measured
throughput, the steps the same time buys), which does not depend on what else the machine runs."""
import argparse, contextlib, datetime, functools, json, os, statistics, tempfile
from pathlib import Path
import torch
from common import RESULTS, write_result
import fastdit_lab.all                  # every method registers its recipes, models, plans, samplers and losses
from fastdit_lab.eval import evaluate_fid
from fastdit_lab.models.dit import inference_plan
from fastdit_lab.train.config import resolve_config
from fastdit_lab.train.store import RunStore
from fastdit_lab.train.trainer import Trainer

def race_parser(doc:str, data:str, budget:float, depth:int|None=None) -> argparse.ArgumentParser:
    "The options every race takes; `depth`: also `--depth`, the blocks of the model (see `deeper`)."
    p = argparse.ArgumentParser(description=doc.split('\n')[0])
    if depth is not None:
        p.add_argument('--depth', type=int, default=depth, help='blocks of the model (model_args), so that the route 2 → depth−4 fits')
    p.add_argument('--data', default=data); p.add_argument('--data-dir', default=None)
    p.add_argument('--image-size', type=int, default=None); p.add_argument('--model', default='DiT-T/4')
    p.add_argument('--budget', type=float, default=budget, help='training seconds per arm and seed (unless --steps)')
    p.add_argument('--steps', type=int, default=None, help='a fixed number of optimizer steps per arm instead of a time budget')
    p.add_argument('--batch', type=int, default=64); p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    p.add_argument('--n', type=int, default=500, help='generated images per FID')
    p.add_argument('--sample-steps', type=int, default=20)
    p.add_argument('--arms', type=int, nargs='+', default=None, help='indices of the arms to run (default: all)')
    p.add_argument('--threads', type=int, default=None,
                   help='torch CPU threads (pin each race to its own cores, e.g. `taskset -c 0 ... --threads 1`, '
                        'to run two races side by side without one slowing the other)')
    p.add_argument('--tag', default='', help='added to the result file name (e.g. the seed of a race split over cores)')
    return p

def deeper(a:argparse.Namespace) -> dict:
    "Overrides making every arm's model `--depth` blocks deep (routing maps off: the race scores samples, not routes)."
    return {'model_args': {'depth': a.depth}, 'routing_every': 0}

def summary(rows:list, labels:list) -> list:
    "Per arm: mean and per-seed FID, class accuracy and steps."
    out = []
    for label in labels:
        rs = [r for r in rows if r['arm'] == label]
        if not rs: continue
        out.append(dict(arm=label, fid_mean=statistics.mean(r['fid'] for r in rs), fid_per_seed=[r['fid'] for r in rs],
                        class_accuracy_mean=statistics.mean(r['class_accuracy'] for r in rs),
                        class_accuracy_per_seed=[r['class_accuracy'] for r in rs],
                        steps_mean=statistics.mean(r['steps'] for r in rs)))
    return out

def arm_config(a:argparse.Namespace, recipe:str, over:dict, seed:int, run_dir:str, **budget):
    "The training config of one arm and seed of a race: the race's options, then `budget` (steps, time), then the arm's `over`."
    return resolve_config(recipe, **{**dict(model=a.model, data=a.data, data_dir=a.data_dir, image_size=a.image_size,
                          **budget, batch_size=a.batch, lr=a.lr, warmup_steps=50, ema_decay=0.999, ema_warmup=True,
                          seed=seed, log_every=50, ckpt_every=10**9, sample_n=10, sample_steps=4, run_dir=run_dir), **over})

@contextlib.contextmanager
def decoded_once():
    """Within it, each split of an image zip (CIFAR-10's) is decoded once: every arm's Trainer and FID reference read the
    same 60 000 JPEGs, about 15 s of one core each time. Each caller gets its own copy of the arrays."""
    import fastdit_lab.data as data
    load = data.load_zip_folders
    memo = functools.cache(lambda path, split, classes, size: load(path, split, list(classes) if classes else None, size))
    def once(path, split, classes=None, image_size=None):
        x, y = memo(str(path), split, tuple(classes) if classes else None, image_size)
        return x.copy(), y.copy()
    data.load_zip_folders = once
    try: yield
    finally: data.load_zip_folders = load

def race(name:str, arms:list, a:argparse.Namespace, extra:dict|None=None, write:bool=True):
    """Run every (label, recipe, overrides) arm for every seed; print a table and write bench/results/<name>-*.json
    (returns its path), or with `write=False` return (rows, summary table).
    An arm's overrides may hold `steps` (its own fixed budget, e.g. from a measured throughput)."""
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if a.threads: torch.set_num_threads(a.threads)
    arms = [arms[i] for i in (a.arms if a.arms is not None else range(len(arms)))]
    rows, partial = [], RESULTS / f'{name}{a.tag}-partial.json'
    with tempfile.TemporaryDirectory() as tmp, decoded_once():
        for seed in a.seeds:
            for i, (label, recipe, over) in enumerate(arms):
                budget = dict(steps=a.steps, time_budget_s=None) if a.steps else dict(steps=10**9, time_budget_s=a.budget)
                load0 = os.getloadavg()
                cfg = arm_config(a, recipe, over, seed, f'{tmp}/{seed}-{i}', **budget)
                tr = Trainer(cfg, quiet=True).fit()
                with RunStore(Path(tr.run_dir) / 'store.sqlite') as st:
                    sc = st.scalars()
                    # the newest logged loss (other scalars, e.g. a learned sampler's, may have rows of their own)
                    losses = sc['loss/total'].dropna('step').values if 'loss/total' in sc else []
                    loss = float(losses[-1]) if len(losses) else float('nan')       # none logged in a very short run
                    # a learned sampler: how often its policy moved, and where its density over u ended up
                    learned = st.tbins('sampler/policy') if 'sampler/policy' in st.tbin_names() else None
                r = evaluate_fid(tr.ema.model, tr.objective, a.data, data_dir=a.data_dir, n=a.n, image_size=a.image_size,
                                 steps=a.sample_steps, cfg_scale=1.0, seed=seed, device=device,
                                 plan=inference_plan(tr.plan))
                rows.append(dict(arm=label, recipe=recipe, overrides=over, seed=seed, steps=tr.step, images=tr.step * a.batch,
                                 train_seconds=tr.train_seconds, last_loss=loss, fid=r['fid'], fid_kind=r['kind'],
                                 fid_network=r['network'], n_fake=r['n_fake'], data_scale=tr.objective.data_scale,
                                 class_accuracy=r['class_accuracy'], class_accuracy_per_class=r['class_accuracy_per_class'],
                                 loadavg_before=load0, loadavg_after=os.getloadavg()))
                if learned is not None:
                    rows[-1].update(policy_updates=learned.sizes['step'], density_u=learned.t_bin.values.round(4).tolist(),
                                    final_density=learned.values[-1].round(4).tolist())
                print(f"seed {seed} | {label:28s} | {tr.step:5d} steps | {r['kind']} {r['fid']:7.2f} | "
                      f"class acc {r['class_accuracy']:.3f} | load {load0[0]:.1f}", flush=True)
                partial.write_text(json.dumps(dict(settings=vars(a), rows=rows), indent=1, default=str))
    table = summary(rows, [label for label, *_ in arms])
    print('\n| arm | proxy FID (mean) | per seed | class accuracy (mean) | per seed | steps |\n|---|---|---|---|---|---|')
    for t in table:
        print(f"| {t['arm']} | {t['fid_mean']:.2f} | {', '.join(f'{v:.2f}' for v in t['fid_per_seed'])} | "
              f"{t['class_accuracy_mean']:.3f} | {', '.join(f'{v:.3f}' for v in t['class_accuracy_per_seed'])} | {t['steps_mean']:.0f} |")
    if not write: partial.unlink(missing_ok=True); return rows, table
    path = write_result(name + a.tag, dict(vars(a), device=str(device)), rows, summary=table, **(extra or {}))
    partial.unlink(missing_ok=True)
    print('wrote', path)
    return path

def merge(name:str, files:list, rename:dict|None=None, arms:list|None=None, note:str='') -> Path:
    """Join the rows of race results `files` into bench/results/<name>-<device>-<date>.json: each row keeps its source
    (file, commit, machine); `rename` relabels arms (an arm named differently in another race); `arms`: the arms'
    order in the summary (default: first appearance), rows of other arms are left out."""
    rename, rows, sources = rename or {}, [], []
    for f in files:
        d = json.loads(Path(f).read_text())
        sources.append(dict(file=Path(f).name, benchmark=d['benchmark'], commit=d['commit'], date=d['date'],
                            machine=d['machine'], settings=d['settings']))
        for r in d['results']:
            r = dict(r, arm=rename.get(r['arm'], r['arm']), source=Path(f).name)
            if arms is None or r['arm'] in arms: rows.append(r)
    labels = arms or list(dict.fromkeys(r['arm'] for r in rows))
    table = summary(rows, labels)
    dev = sources[0]['machine'].get('gpu', 'cpu').replace(' ', '_')
    stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S')
    path = RESULTS / f'{name}-{dev}-{stamp}.json'
    path.write_text(json.dumps(dict(benchmark=name, date=datetime.datetime.now().isoformat(timespec='seconds'), merged_from=sources,
                                    note=note, results=rows, summary=table), indent=1))
    for t in table: print(f"{t['arm']:32s} FID {t['fid_mean']:.2f} {t['fid_per_seed']}  class acc {t['class_accuracy_mean']:.3f} {t['class_accuracy_per_seed']}")
    print('wrote', path)
    return path

if __name__ == '__main__':
    p = argparse.ArgumentParser(description='Join race results split over processes into one (see the module docstring).')
    p.add_argument('command', choices=['merge']); p.add_argument('name'); p.add_argument('files', nargs='+')
    p.add_argument('--rename', nargs='*', default=[], metavar='OLD=NEW'); p.add_argument('--arms', nargs='*', default=None)
    p.add_argument('--note', default='')
    a = p.parse_args()
    merge(a.name, a.files, dict(r.split('=', 1) for r in a.rename), a.arms, a.note)
