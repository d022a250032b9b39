"""tools/gpu_check.sh: its steps, its answer without a GPU, and the one
JSON its report script makes of the steps' files (the steps themselves
need a CUDA GPU)."""
import json
import os
import os.path as osp
import subprocess
import sys

from mmdpal_testing import REPO

SCRIPT = osp.join(REPO, 'tools', 'gpu_check.sh')
REPORT = osp.join(REPO, 'tools', 'analysis_tools', 'gpu_check_report.py')


def run(*args, **env):
    return subprocess.run(['bash', SCRIPT, *args],
                          env={
                              **os.environ, 'PYTHON': sys.executable,
                              **env
                          },
                          capture_output=True,
                          text=True,
                          timeout=120)


def test_dry_run_lists_the_steps():
    result = run('--dry-run', '--out', 'gpu.json')
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == 'writes: gpu.json'
    steps = dict(line.split(': ', 1) for line in lines[:-1])
    assert list(steps) == [
        f'{mode}_b{batch}' for mode in ('paper_bf16', 'official_fp16_ema')
        for batch in (64, 128, 256)
    ] + ['pytest_gpu']
    for name, command in steps.items():
        if name != 'pytest_gpu':
            config = command.split()[2]
            assert osp.isfile(osp.join(REPO, config)), config
            assert f'--batch-size {name.rsplit("_b", 1)[1]} ' in command
            assert '--device cuda' in command
    assert steps['pytest_gpu'] == 'python -m pytest -m gpu tests'


def test_without_a_gpu_it_says_so_and_succeeds():
    result = run(CUDA_VISIBLE_DEVICES='')
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f'gpu_check: no CUDA GPU visible to {sys.executable} '
        '(torch.cuda.is_available() is False): nothing to check'
    ]


def write_step(parts, name, returncode=0, losses=None, junit=None):
    (parts / f'{name}.status').write_text(f'{returncode} 12\n')
    (parts / f'{name}.log').write_text(f'the log of {name}\n')
    if losses is not None:
        train = dict(
            device='cuda (NVIDIA H100 80GB HBM3)',
            precision='AMP bfloat16',
            batch=64,
            samples_per_s=1234.5,
            s_per_iter=0.05,
            peak_memory_gb=9.5,
            gflops_per_sample=88.9,
            last_losses=losses,
            split_s={})
        (parts / f'{name}.json').write_text(json.dumps(dict(train=train)))
    if junit is not None:
        (parts / f'{name}.xml').write_text(junit)


JUNIT = '''<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite>
<testcase classname="a" name="test_sync[paper]"/>
<testcase classname="a" name="test_nms"><skipped message="CPU ops"/></testcase>
<testcase classname="a" name="test_dist"><failure message="x"/></testcase>
</testsuite></testsuites>'''


def report(parts, tmp_path):
    out = tmp_path / 'gpu.json'
    result = subprocess.run(
        [sys.executable, REPORT,
         str(parts),
         str(out), '--seconds', '300'],
        capture_output=True,
        text=True,
        timeout=60)
    return result, json.loads(out.read_text())


def test_report_gathers_every_figure(tmp_path):
    parts = tmp_path / 'parts'
    parts.mkdir()
    write_step(parts, 'paper_bf16_b64', losses=dict(loss=1.5, loss_local=.2))
    write_step(
        parts, 'pytest_gpu', junit=JUNIT.replace('<failure message="x"/>', ''))
    result, data = report(parts, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'gpu_check: 2 of 2 steps passed in 300 s' in result.stdout
    step = data['steps']['paper_bf16_b64']
    assert step['samples_per_s'] == 1234.5 and step['peak_memory_gb'] == 9.5
    assert step['finite_losses'] and step['seconds'] == 12
    assert 'log_tail' not in step
    assert data['steps']['pytest_gpu']['tests'] == {
        'test_sync[paper]': 'passed',
        'test_nms': 'skipped',
        'test_dist': 'passed'
    }
    assert data['failed'] == [] and data['seconds'] == 300


def test_report_fails_on_a_failed_step_or_a_non_finite_loss(tmp_path):
    parts = tmp_path / 'parts'
    parts.mkdir()
    write_step(parts, 'official_fp16_ema_b256', losses=dict(loss=float('nan')))
    write_step(parts, 'pytest_gpu', returncode=1, junit=JUNIT)
    write_step(parts, 'paper_bf16_b64', losses=dict(loss=1.0))
    result, data = report(parts, tmp_path)
    assert result.returncode == 1
    assert data['failed'] == ['official_fp16_ema_b256', 'pytest_gpu']
    assert 'failed: official_fp16_ema_b256, pytest_gpu' in result.stdout
    assert not data['steps']['official_fp16_ema_b256']['finite_losses']
    assert data['steps']['pytest_gpu']['tests']['test_dist'] == 'failure'
    assert data['steps']['pytest_gpu']['log_tail'] == 'the log of pytest_gpu\n'
