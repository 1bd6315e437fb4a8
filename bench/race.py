"""Equal-wall-clock races between training configurations: each arm and seed trains from scratch for the same
training time (sampler overheads included), then draws samples and scores a proxy FID. Used by the method benchmarks."""
import argparse, statistics, tempfile
from pathlib import Path
import torch
from common import write_result
import fastdit_lab.all                  # every method registers its recipes, models, plans, samplers and losses
from fastdit_lab.eval import evaluate_fid
from fastdit_lab.train.config import resolve_config
from fastdit_lab.train.store import RunStore
from fastdit_lab.train.trainer import Trainer

def race_parser(doc:str, data:str, budget:float) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc.split('\n')[0])
    p.add_argument('--data', default=data); p.add_argument('--data-dir', default=None)
    p.add_argument('--image-size', type=int, default=None); p.add_argument('--model', default='DiT-T/4')
    p.add_argument('--budget', type=float, default=budget, help='training seconds per arm and seed')
    p.add_argument('--batch', type=int, default=64); p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    p.add_argument('--n', type=int, default=500, help='generated images per FID')
    p.add_argument('--sample-steps', type=int, default=20)
    p.add_argument('--arms', type=int, nargs='+', default=None, help='indices of the arms to run (default: all)')
    p.add_argument('--threads', type=int, default=None,
                   help='torch CPU threads (pin each race to its own cores, e.g. `taskset -c 0 ... --threads 1`, '
                        'to run two races side by side without one slowing the other)')
    return p

def race(name:str, arms:list, a:argparse.Namespace, write:bool=True):
    "Run every (label, recipe, overrides) arm for every seed; print a table, write bench/results/<name>-*.json (`write`), return (rows, table)."
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if a.threads: torch.set_num_threads(a.threads)
    arms = [arms[i] for i in (a.arms if a.arms is not None else range(len(arms)))]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in a.seeds:
            for i, (label, recipe, over) in enumerate(arms):
                cfg = resolve_config(recipe, **{**dict(model=a.model, data=a.data, data_dir=a.data_dir, image_size=a.image_size,
                                     steps=10**9, time_budget_s=a.budget, batch_size=a.batch, lr=a.lr, warmup_steps=50,
                                     ema_decay=0.999, ema_warmup=True, seed=seed, log_every=50, ckpt_every=10**9,
                                     sample_n=10, sample_steps=4, run_dir=f'{tmp}/{seed}-{i}'), **over})
                tr = Trainer(cfg, quiet=True).fit()
                with RunStore(Path(tr.run_dir) / 'store.sqlite') as st:
                    sc = st.scalars()
                    # the newest logged loss (other scalars, e.g. a learned sampler's, may have rows of their own)
                    losses = sc['loss/total'].dropna('step').values if 'loss/total' in sc else []
                    loss = float(losses[-1]) if len(losses) else float('nan')       # none logged in a very short run
                    # a learned sampler: how often its policy moved, and where its density over u ended up
                    learned = st.tbins('sampler/policy') if 'sampler/policy' in st.tbin_names() else None
                r = evaluate_fid(tr.ema.model, tr.objective, a.data, data_dir=a.data_dir, n=a.n, image_size=a.image_size,
                                 steps=a.sample_steps, cfg_scale=1.0, seed=seed, device=device)
                rows.append(dict(arm=label, recipe=recipe, overrides=over, seed=seed, steps=tr.step, images=tr.step * a.batch,
                                 train_seconds=tr.train_seconds, last_loss=loss, fid=r['fid'], fid_kind=r['kind'],
                                 fid_network=r['network'], n_fake=r['n_fake'], data_scale=tr.objective.data_scale,
                                 class_accuracy=r.get('class_accuracy')))
                if learned is not None:
                    rows[-1].update(policy_updates=learned.sizes['step'], density_u=learned.t_bin.values.round(4).tolist(),
                                    final_density=learned.values[-1].round(4).tolist())
                print(f"seed {seed} | {label:26s} | {tr.step:5d} steps | {r['kind']} {r['fid']:7.2f}", flush=True)
    table = []
    for label, *_ in arms:
        f = [r['fid'] for r in rows if r['arm'] == label]
        table.append(dict(arm=label, fid_mean=statistics.mean(f), fid_per_seed=f,
                          steps_mean=statistics.mean(r['steps'] for r in rows if r['arm'] == label)))
    print('\n| arm | proxy FID (mean) | per seed | steps |\n|---|---|---|---|')
    for t in table: print(f"| {t['arm']} | {t['fid_mean']:.2f} | {', '.join(f'{v:.2f}' for v in t['fid_per_seed'])} | {t['steps_mean']:.0f} |")
    if write: print('wrote', write_result(name, dict(vars(a), device=str(device)), rows, summary=table))
    return rows, table
