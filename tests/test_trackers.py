"""Mirroring scalars to accelerate's trackers: `fastdit train --trackers tensorboard` writes TensorBoard events that
match the run store, across a resume; a tracker whose package is missing is refused in one line."""
import pytest
from conftest import run_cli

def _events(folder):
    "Every scalar in the TensorBoard event files under `folder`: {tag: {step: value}}."
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    out = {}
    for f in sorted(folder.rglob('events.out.tfevents.*')):
        ea = EventAccumulator(str(f)); ea.Reload()
        for tag in ea.Tags()['scalars']:
            out.setdefault(tag, {}).update({e.step: e.value for e in ea.Scalars(tag)})
    return out

@pytest.mark.slow
def test_tensorboard_mirrors_the_store(tmp_path):
    pytest.importorskip('tensorboard', reason='the tensorboard package (in the dev extras) is not installed')
    run = tmp_path / 'run'
    args = ['train', '--recipe', 'sit', '--model', 'DiT-T/4', '--image-size', '16', '--batch-size', '8', '--log-every', '4',
            '--ckpt-every', '8', '--sample-n', '10', '--sample-steps', '2', '--trackers', 'tensorboard', '--run-dir', run]
    r = run_cli(*args, '--steps', '8'); assert r.returncode == 0, r.stderr[-3000:]
    r = run_cli(*args, '--steps', '16'); assert r.returncode == 0, r.stderr[-3000:]      # resumes the same run
    ev = _events(run / 'trackers')
    from fastdit_lab.train.store import RunStore
    with RunStore(run / 'store.sqlite') as st: sc = st.scalars()
    logged = sc['loss/total'].dropna('step').step.values.tolist()
    assert sorted(ev['loss/total']) == [4, 8, 12, 16] == logged
    for name in ('loss/total', 'sys/img_per_s'):
        assert ev[name] == pytest.approx(dict(zip(logged, sc[name].sel(step=logged).values.tolist())), rel=1e-6)
    # the FLOP ratios, in the first row of each fit (the resume starts at 8)
    assert sorted(ev['sys/flop_ratio_train']) == [4, 12] == sc['sys/flop_ratio_train'].dropna('step').step.values.tolist()

def test_missing_tracker_is_one_line(tmp_path):
    r = run_cli('train', '--steps', '1', '--trackers', 'tensorboard,mlflow', '--run-dir', tmp_path / 'r')
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and 'pip install mlflow' in lines[0], r.stderr
    r = run_cli('train', '--steps', '1', '--trackers', 'tensorbord', '--run-dir', tmp_path / 'r')
    assert r.returncode == 2 and "Unknown tracker 'tensorbord'" in r.stderr, r.stderr
    assert not (tmp_path / 'r').exists()                     # refused before anything was written
