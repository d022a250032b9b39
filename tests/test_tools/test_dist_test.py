"""tools/dist_test.sh with 2 processes on a CPU (torchrun, gloo) reports the
metrics of a 1-process tools/test.py run of the same checkpoint, for the
COCO-keypoint, CrowdHuman and LIP chains, on 3 images each (not a multiple
of 2: the sampler pads rank 1 with a repeat that must not be counted).

The checkpoints are the tiny downstream models with the tiny student
loaded (the heads as initialised): the point is the gathering of the
results, not the model's quality."""
import json
import os
import os.path as osp
import socket
import subprocess

import pytest
import torch
from mmdpal_testing import (REPO, TINY_CONFIGS, build_with_student,
                            evaluate_checkpoint, make_student,
                            mmdet_data_options, mmpose_data_options,
                            mmseg_data_options, write_coco_keypoints,
                            write_crowdhuman, write_lip)
from mmengine.registry import DefaultScope

pytestmark = pytest.mark.slow


def coco(root):
    val = write_coco_keypoints(root, 'val', num_images=3, seed=1)
    prefix = osp.join(root, '{run}', 'preds')
    return ('tiny_mmpose_coco.py', 'mmpose',
            mmpose_data_options(root, val['ann_file'], val['ann_file'],
                                val['img_prefix']) +
            [f'test_evaluator.outfile_prefix={prefix}'],
            prefix + '.keypoints.json')


def crowdhuman(root):
    val, _ = write_crowdhuman(root, 'val', num_images=3, seed=1)
    prefix = osp.join(root, '{run}', 'preds')
    return ('tiny_crowddet.py', 'mmdet', mmdet_data_options(root, val, val) +
            [f'test_evaluator.outfile_prefix={prefix}'], prefix + '.json')


def lip(root):
    write_lip(root, 'val', num_images=3, seed=1)
    return 'tiny_lip.py', 'mmseg', mmseg_data_options(root), None


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def assert_same(one, two, where='predictions'):
    """The same records in the same order: strings and integers (ids)
    equal, other numbers to round-off (the ranks run smaller batches)."""
    if isinstance(one, dict):
        assert one.keys() == two.keys(), where
        for key in one:
            assert_same(one[key], two[key], f'{where}[{key!r}]')
    elif isinstance(one, list):
        assert len(one) == len(two), where
        for i, (a, b) in enumerate(zip(one, two)):
            assert_same(a, b, f'{where}[{i}]')
    elif isinstance(one, float):
        assert two == pytest.approx(one, rel=1e-4, abs=1e-4), where
    else:
        assert one == two, where


@pytest.mark.parametrize(
    'chain', [coco, crowdhuman, lip], ids=lambda f: f.__name__)
def test_two_process_test_reports_the_one_process_metrics(chain, tmp_path):
    root = str(tmp_path)
    config, scope, options, preds = chain(root)
    config = osp.join(TINY_CONFIGS, config)
    # a checkpoint of the whole downstream model
    student, _ = make_student(osp.join(root, 'student'))
    with DefaultScope.overwrite_default_scope(scope):  # restored after
        model = build_with_student(config, scope, student)
    checkpoint = osp.join(root, 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), checkpoint)

    def opts(run):
        os.makedirs(osp.join(root, run), exist_ok=True)
        return [o.replace('{run}', run) for o in options]

    one = evaluate_checkpoint(config, checkpoint, osp.join(root, 'one'),
                              opts('one'))
    out = osp.join(root, 'two', 'metrics.json')
    result = subprocess.run([
        'bash', 'tools/dist_test.sh', config, checkpoint, '2', '--work-dir',
        osp.join(root, 'two'), '--out', out, '--cfg-options', *opts('two')
    ],
                            cwd=REPO,
                            env=dict(
                                os.environ,
                                OMP_NUM_THREADS='1',
                                PORT=free_port()),
                            capture_output=True,
                            text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    with open(out) as f:
        two = json.load(f)
    assert one.keys() == two.keys()
    for key in one:
        assert two[key] == pytest.approx(one[key], abs=1e-6), key
    if preds is not None:
        with open(preds.format(run='one')) as f, \
                open(preds.format(run='two')) as g:
            assert_same(json.load(f), json.load(g))
