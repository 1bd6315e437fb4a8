"The command line: listings, a tiny run, sampling from it, and one-line errors for bad input."
import fcntl, os, pty, re, select, struct, subprocess, sys, termios
import pytest
from conftest import run_cli

def test_lists():
    r = run_cli('recipes'); assert r.returncode == 0 and 'quickstart' in r.stdout and 'sit' in r.stdout
    r = run_cli('models'); assert r.returncode == 0 and 'DiT-XL/2' in r.stdout and '675.1 M params' in r.stdout

def test_help_and_a_closed_pipe():
    "`fastdit train --help` documents the options; `fastdit models | head` ends quietly when the reader has gone."
    r = run_cli('train', '--help')
    h = ' '.join(r.stdout.split())
    assert r.returncode == 0 and 'optimizer steps in total (default: 10000)' in h and 'grad_variance' in h and 'logit_normal' in h
    p = subprocess.Popen([sys.executable, '-m', 'fastdit_lab.cli', 'models'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdout.close()                                   # the reader leaves before the first line (as `head` does)
    err = p.stderr.read(); p.wait(120)
    assert p.returncode == 0 and 'Traceback' not in err and 'BrokenPipe' not in err, err

def test_bad_input_is_one_line(tmp_path):
    cases = [(['train', '--model', 'DiT-Q/2'], "Unknown model 'DiT-Q/2'"),
             (['train', '--recipe', 'sti'], "Did you mean 'sit'"),
             (['train', '--data', 'mnist', '--data-dir', tmp_path, '--steps', '1'], 'not found in'),
             (['train', '--model', 'DiT-T/4', '--image-size', '30', '--steps', '1', '--run-dir', tmp_path / 'r'], 'not divisible by the patch size'),
             (['train', '--steps', 'ten'], 'steps must be an integer'),
             (['train', '--set', 'sampler'], '--set takes FIELD.KEY=VALUE'),
             (['sample', tmp_path], 'is not a run folder')]
    for args, msg in cases:
        r = run_cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith('fastdit: error:') and msg in lines[0], (args, r.stderr)

@pytest.mark.slow
def test_train_then_sample(tmp_path, reference_run):
    run, out = reference_run                                     # trained once per session (conftest)
    assert (run / 'samples' / 'final.png').exists() and 'run folder' in out

@pytest.mark.slow
def test_an_instrument_interval_longer_than_the_run_warns_once(tmp_path):
    run = tmp_path / 'run'
    r = run_cli('train', '--recipe', 'sit', '--model', 'DiT-T/4', '--image-size', '16', '--steps', '12', '--batch-size', '8',
                '--log-every', '4', '--ckpt-every', '6', '--sample-n', '10', '--sample-steps', '2', '--run-dir', run,
                '--instrument', '{"name": "grad_variance", "every": 500}')
    assert r.returncode == 0, r.stderr[-3000:]
    # an interval longer than the run says so once, in one line, with one that records
    assert r.stderr.count('fastdit: warning: grad_variance every 500 steps will record 0 times in a 12-step run; '
                          """use --instrument '{"name":"grad_variance","every":1}'""") == 1, r.stderr[-3000:]

@pytest.mark.slow
def test_token_plans_train_and_guide(tmp_path):
    "TREAD and MaskDiT recipes run from the command line (with their fine-tune stage); TREAD guidance samples a grid."
    for recipe, model in (('tread-f', 'DiT-T/2'), ('maskdit-ft', 'MaskDiT-T/2')):
        run = tmp_path / recipe
        r = run_cli('train', '--recipe', recipe, '--model', model, '--model-args', '{"depth": 8}', '--image-size', '16',
                    '--steps', '8', '--batch-size', '8', '--log-every', '4', '--ckpt-every', '8', '--sample-n', '10',
                    '--sample-steps', '3', '--routing-every', '4', '--stages', '[{"at_step": -2, "plan": null}]',
                    '--run-dir', run)
        assert r.returncode == 0, r.stderr[-3000:]
        assert 'stage from step 6' in r.stdout, r.stdout[-2000:]
    r = run_cli('sample', tmp_path / 'tread-f', '--n', '4', '--steps', '3', '--tread-guidance', '0.3,0.7', '--cfg-scale', '1.5',
                '--out', tmp_path / 'g.png')
    assert r.returncode == 0 and (tmp_path / 'g.png').exists(), r.stderr[-3000:]
    r = run_cli('sample', tmp_path / 'tread-f', '--tread-guidance', 'strong', '--out', tmp_path / 'h.png')
    assert r.returncode == 2 and 'STRONG,WEAK' in r.stderr and not (tmp_path / 'h.png').exists()

@pytest.mark.slow
def test_dydit_finetune_from_a_dense_run(tmp_path):
    "Train a dense DiT, fine-tune it as DyDiT from its folder (stages 1 and 2), record widths and maps, sample dynamically."
    common = ['--image-size', '16', '--batch-size', '8', '--log-every', '4', '--sample-n', '10', '--sample-steps', '3']
    r = run_cli('train', '--recipe', 'dit', '--model', 'DiT-T/4', '--steps', '6', '--ckpt-every', '6', *common,
                '--run-dir', tmp_path / 'dense')
    assert r.returncode == 0, r.stderr[-3000:]
    r = run_cli('train', '--recipe', 'dydit', '--model', 'DyDiT-T/4', '--steps', '8', '--ckpt-every', '8', *common,
                '--init-from', tmp_path / 'dense', '--routing-every', '4',
                '--run-dir', tmp_path / 'dy')
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'initialised from' in r.stdout and 'new (routers)' in r.stdout, r.stdout[-2000:]
    assert 'stage from step 1' in r.stdout                                # 15 % of 8 steps: stage 2 from step 1
    from fastdit_lab.train.store import RunStore
    with RunStore(tmp_path / 'dy' / 'store.sqlite') as st:
        assert st.array('plan/head_width', 8).values.shape == (20, 6) and st.array('plan/routing_map', 8).values.shape[1] == 6
        assert 'plan/flops_ratio' in st.scalars() and 'loss/flops' in st.scalars()
    r = run_cli('sample', tmp_path / 'dy', '--n', '4', '--steps', '3', '--out', tmp_path / 'g.png')
    assert r.returncode == 0 and (tmp_path / 'g.png').exists(), r.stderr[-3000:]
    r = run_cli('train', '--recipe', 'dydit', '--model', 'DyDiT-T/4', '--steps', '2', *common,
                '--init-from', tmp_path / 'nothing', '--run-dir', tmp_path / 'bad')
    assert r.returncode == 2 and 'does not exist' in r.stderr, r.stderr[-2000:]

@pytest.mark.slow
def test_progress_bar_on_a_terminal(tmp_path):
    "On a terminal `fastdit train` keeps a progress bar (step / total, speed, elapsed and ETA) under its interval lines."
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 160, 0, 0))   # a 160-column terminal
    p = subprocess.Popen([sys.executable, '-m', 'fastdit_lab.cli', 'train', '--recipe', 'sit', '--model', 'DiT-T/4',
                          '--image-size', '8', '--steps', '6', '--batch-size', '4', '--log-every', '3', '--ckpt-every', '6',
                          '--sample-n', '4', '--sample-steps', '2', '--run-dir', str(tmp_path / 'run')],
                         stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env={**os.environ, 'OMP_NUM_THREADS': '1'})
    os.close(follower)
    out = b''
    while True:                                      # read until the process has closed its end
        if select.select([leader], [], [], 300)[0]:
            try: chunk = os.read(leader, 65536)
            except OSError: break
            if not chunk: break
            out += chunk
        elif p.poll() is not None: break
    p.wait(60); os.close(leader)
    text = out.decode(errors='replace')
    assert p.returncode == 0, text[-2000:]
    assert re.search(r'run: +100%\|.*\| 6/6 \[\d\d:\d\d<00:00', text), text[-2000:]          # the bar: done, elapsed<ETA
    assert text.count('[fastdit] step 000000') == 2 and 'sampling the final grid' in text    # the lines stay above it

def test_plan_prints_memory_by_part_and_the_largest_batch():
    "`fastdit plan`: GiB per GPU by part; FSDP shards the optimizer, checkpointing and TREAD fit bigger batches."
    def plan(*args):
        r = run_cli('plan', '--model', 'DiT-XL/2', '--batch-size', 256, '--gpus', 8, *args)
        assert r.returncode == 0, r.stderr
        gib = {m[0].strip(): float(m[1]) for m in re.findall(r'^(.+?)\s+([\d.]+) GiB$', r.stdout, re.M)}
        return gib, int(re.search(r'largest per-GPU batch that fits: (\d+)', r.stdout)[1]), r.stdout
    dense, fit, out = plan()
    assert {'weights (fp32)', 'gradients (fp32)', 'AdamW moments (fp32)', 'EMA (fp32)', 'activations (32 per GPU)',
            'total'} <= set(dense) and 'H100-80GB' in out and '-> fits' in out, out
    assert abs(sum(v for k, v in dense.items() if k != 'total') - dense['total']) < 0.02
    sharded, fit_fsdp, _ = plan('--fsdp')
    assert sharded['AdamW moments (fp32)'] == pytest.approx(dense['AdamW moments (fp32)'] / 8, abs=0.01)
    _, fit_ckpt, _ = plan('--grad-checkpointing')
    _, fit_tread, _ = plan('--plan', 'tread')
    assert fit < fit_fsdp and fit < fit_tread < fit_ckpt, (fit, fit_fsdp, fit_tread, fit_ckpt)

@pytest.mark.parametrize('args,msg', [(['--plan', 'maskdit'], 'needs a MaskDiT model'),
                                      (['--plan', 'trad'], "Unknown plan 'trad'"),
                                      (['--batch-size', 100, '--gpus', 8], 'not divisible by 8 GPUs'),
                                      (['--model', 'DiT-Q/2'], "Unknown model 'DiT-Q/2'"),
                                      (['--image-size', 100], 'not a multiple of 8')])
def test_plan_bad_input_is_one_line(args, msg):
    r = run_cli('plan', *args)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith('fastdit: error:') and msg in lines[0], r.stderr
