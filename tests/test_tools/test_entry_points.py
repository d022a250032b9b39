"""mmdpal's entry points (the scripts of tools/ and demo/) print no
third-party deprecation warning: mmengine 0.10.7 imports pkg_resources
whenever it reads a config, and the pinned setuptools warns each time."""
import ast
import glob
import os.path as osp
import subprocess
import sys

import pytest
from mmdpal_testing import REPO, TINY_CONFIG, run_tool

PKG_RESOURCES = 'pkg_resources is deprecated as an API'

# imports mmdpal only inside the measurement whose import cost it reports,
# and reads no config
READS_NO_CONFIG = {'tools/analysis_tools/reid_metric_memory.py'}


def entry_points():
    """The scripts with a ``__main__`` block that import mmengine or mmdpal
    (the ones that can read a config)."""
    scripts = []
    for path in sorted(
            glob.glob(osp.join(REPO, 'tools', '**', '*.py'), recursive=True) +
            glob.glob(osp.join(REPO, 'demo', '*.py'))):
        with open(path) as f:
            source = f.read()
        if "if __name__ == '__main__':" in source and (
                'import mmdpal' in source or 'from mmdpal' in source
                or 'mmengine' in source):
            scripts.append(osp.relpath(path, REPO))
    return [s for s in scripts if s not in READS_NO_CONFIG]


def main_block(path):
    tree = ast.parse(open(osp.join(REPO, path)).read())
    block = next(
        node for node in tree.body
        if isinstance(node, ast.If) and 'main' in ast.unparse(node.test))
    return [ast.unparse(stmt) for stmt in block.body]


def test_every_entry_point_silences_them_before_it_starts():
    scripts = entry_points()
    assert 'tools/train.py' in scripts and len(scripts) >= 10
    for path in scripts:
        assert main_block(path)[0] == 'silence_stack_deprecations()', path


def test_train_help_prints_no_warning():
    result = run_tool(['tools/train.py', '--help'])
    assert result.returncode == 0
    assert result.stderr == ''
    assert 'Warning' not in result.stdout


@pytest.mark.slow
def test_a_tool_that_reads_a_config_prints_no_warning(tmp_path):
    # the stack does warn when it reads a config ...
    plain = subprocess.run([
        sys.executable, '-c', 'from mmengine.config import Config; '
        f'Config.fromfile({TINY_CONFIG!r})'
    ],
                           capture_output=True,
                           text=True,
                           timeout=120)
    assert plain.returncode == 0 and PKG_RESOURCES in plain.stderr
    # ... and a tool reading the same config does not
    result = run_tool([
        'tools/analysis_tools/benchmark_pretrain.py', TINY_CONFIG,
        '--skip-data', '--skip-train', '--image-size', '64', '32',
        '--background-size', '80', '80'
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'Warning' not in result.stderr, result.stderr


def test_the_filter_hides_exactly_the_stack_deprecations():
    code = '''
import warnings
from mmdpal.utils import silence_stack_deprecations
silence_stack_deprecations()
warnings.warn("pkg_resources is deprecated as an API. See ...", UserWarning)
warnings.warn("pkg_resources is deprecated as an API", RuntimeWarning)
warnings.warn("mmdpal: the teacher has no class token", UserWarning)
'''
    result = subprocess.run([sys.executable, '-c', code],
                            capture_output=True,
                            text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    warned = [ln for ln in result.stderr.splitlines() if 'Warning:' in ln]
    assert len(warned) == 2, result.stderr
    assert 'RuntimeWarning: pkg_resources' in warned[0]
    assert 'UserWarning: mmdpal: the teacher' in warned[1]
