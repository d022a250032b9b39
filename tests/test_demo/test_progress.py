"""demo/progress.py: a demo step's whole output to its log, one progress
line per step with the time left, and the log's tail when it fails."""
import os.path as osp
import subprocess
import sys

from mmdpal_testing import REPO

PROGRESS = osp.join(REPO, 'demo', 'progress.py')
PATTERN = r'Iter\(train\) \[ *([0-9]+)/'


def step(tmp_path, script):
    log = str(tmp_path / 'step.log')
    result = subprocess.run([
        sys.executable, PROGRESS, '--log', log, '--total', '4', '--label',
        'DPAL', '--pattern', PATTERN, '--', sys.executable, '-c', script
    ],
                            capture_output=True,
                            text=True,
                            timeout=60)
    with open(log) as f:
        return result, f.read()


def test_progress_lines_and_the_whole_log(tmp_path):
    script = ('import time\n'
              'for i in range(1, 5):\n'
              '    print("noise line", i)\n'
              '    print(f"Iter(train) [ {i}/4]  loss: 0.5", flush=True)\n'
              '    time.sleep(0.05)\n')
    result, log = step(tmp_path, script)
    assert result.returncode == 0, result.stderr
    # the log has every line; the terminal only the progress
    assert log.count('noise line') == 4 and log.count('Iter(train)') == 4
    lines = result.stdout.splitlines()
    assert [line.split('] ')[1].split(',')[0]
            for line in lines] == ['1/4', '2/4', '3/4', '4/4']
    assert lines[0].startswith('DPAL [#######.......')
    assert 'left' in lines[1] and '0 min 00 s left' in lines[-1]
    assert 'noise' not in result.stdout


def test_a_failing_step_shows_the_tail_of_its_log(tmp_path):
    script = ('import sys\n'
              'print("Iter(train) [ 1/4]", flush=True)\n'
              'print("ValueError: the data root is empty", flush=True)\n'
              'sys.exit(3)\n')
    result, log = step(tmp_path, script)
    assert result.returncode == 3
    assert 'DPAL failed (exit 3); the last lines of' in result.stderr
    assert 'ValueError: the data root is empty' in result.stderr
    assert 'ValueError' in log
