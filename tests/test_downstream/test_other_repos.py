"""mmdpal used from other OpenMMLab repos (docs/use_from_other_repos.md).

A user keeps working in mmpretrain or mmpose and writes configs in their own
folder that inherit ``mmdpal::...``; they run that repo's own tools (the
copies shipped in its installed ``.mim/tools``), from that folder. Here the
folder is a temporary one outside this checkout, and the configs are this
checkout's tiny test configs with their relative ``_base_`` swapped for the
``mmdpal::`` name (the same shrinking, no second copy), plus a child config
that overrides the data root, the checkpoint and the batch size, and
``--cfg-options`` on top of it.
"""
import json
import math
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
from mmdpal_testing import (TINY_CONFIG, TINY_CONFIGS, mmpose_data_options,
                            train_log, train_losses, write_coco_keypoints)
from mmengine.config import Config


def repo_tool(package, tool):
    """``tools/<tool>`` of an installed OpenMMLab package's ``.mim``."""
    module = __import__(package)
    path = osp.join(osp.dirname(module.__file__), '.mim', 'tools', tool)
    assert osp.isfile(path), path
    return path


def as_mmdpal_child(config, base, folder, name):
    """``config``'s text with its ``_base_`` set to ``mmdpal::base``."""
    with open(config) as f:
        text = f.read()
    text, count = re.subn(
        r"^_base_ = (\(.*?\)|'[^']*')\n",
        f"_base_ = 'mmdpal::{base}'\n",
        text,
        count=1,
        flags=re.S | re.M)
    assert count == 1, f'no _base_ line in {config}'
    path = osp.join(folder, name)
    with open(path, 'w') as f:
        f.write(text)
    return path


def write(folder, name, text):
    path = osp.join(folder, name)
    with open(path, 'w') as f:
        f.write(text)
    return path


def run_in(folder, args, timeout=900):
    """A tool run from the user's folder, with nothing of this checkout on
    the path but the installed mmdpal."""
    env = dict(os.environ, OMP_NUM_THREADS='2', MKL_NUM_THREADS='2')
    env.pop('PYTHONPATH', None)
    result = subprocess.run([sys.executable, *args],
                            cwd=folder,
                            env=env,
                            capture_output=True,
                            text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def dumped_config(work_dir, name):
    """The config the runner dumped in its work_dir (what it really ran)."""
    return Config.fromfile(osp.join(work_dir, name))


@pytest.mark.slow
def test_pretraining_with_mmpretrains_own_train_tool(tmp_path, tiny_data):
    user = tmp_path / 'my_mmpretrain_work'
    user.mkdir()
    as_mmdpal_child(TINY_CONFIG, 'dpal/vit-ti_path-b_lup1m.py', user,
                    'tiny_dpal.py')
    write(
        user, 'child.py', f'''_base_ = ['./tiny_dpal.py']
# the user's own data, teacher and batch size
train_dataloader = dict(
    batch_size=2,
    dataset=dict(data_root={str(tiny_data)!r}))
model = dict(teacher=dict(checkpoint={str(tiny_data / 'teacher.pth')!r}))
''')
    work = str(tmp_path / 'work')
    run_in(
        str(user), [
            repo_tool('mmpretrain', 'train.py'), 'child.py', '--work-dir',
            work, '--cfg-options',
            'train_dataloader.dataset.pipeline.2.background_dir='
            f'{tiny_data / "backgrounds"}',
            'train_dataloader.dataset.indices=4', 'train_cfg.max_epochs=1'
        ])
    losses = train_losses(work)
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    cfg = dumped_config(work, 'child.py')
    assert cfg.train_dataloader.batch_size == 2  # child config
    assert cfg.train_dataloader.dataset.data_root == str(tiny_data)
    assert cfg.train_dataloader.dataset.indices == 4  # --cfg-options
    assert cfg.model.teacher.checkpoint == str(tiny_data / 'teacher.pth')
    assert cfg.model.decoder.out_dims == 48  # the tiny config, via mmdpal::
    assert cfg.optim_wrapper.paramwise_cfg  # read from the mmdpal:: base


@pytest.mark.slow
def test_coco_keypoints_with_mmposes_own_train_and_test_tools(
        tmp_path, tiny_student):
    user = tmp_path / 'my_mmpose_work'
    user.mkdir()
    train = write_coco_keypoints(str(tmp_path / 'coco'), 'train', seed=0)
    val = write_coco_keypoints(str(tmp_path / 'coco'), 'val', seed=1)
    data_root = str(tmp_path / 'coco')
    as_mmdpal_child(
        osp.join(TINY_CONFIGS, 'tiny_mmpose_coco.py'),
        'downstream/mmpose/td-hm_dpal-vit-ti_8xb64-210e_coco-256x192.py', user,
        'tiny_coco.py')
    student, state = tiny_student
    write(
        user, 'child.py', f'''_base_ = ['./tiny_coco.py']
# the user's DPAL student, data and batch size
model = dict(init_cfg=dict(checkpoint={student!r}))
train_dataloader = dict(batch_size=1, dataset=dict(data_root={data_root!r}))
''')
    options = [
        o for o in
        mmpose_data_options(data_root, train['ann_file'], val['ann_file'],
                            train['img_prefix'], val['img_prefix'])
        if not o.startswith('train_dataloader.dataset.data_root')
    ]
    work = str(tmp_path / 'work')
    # --cfg-options on top of the child: batch 2, i.e. two iterations
    run_in(
        str(user), [
            repo_tool('mmpose', 'train.py'), 'child.py', '--work-dir', work,
            '--cfg-options', 'train_dataloader.batch_size=2', *options
        ])
    log = train_log(work)
    assert (f'StrictPretrained: loaded all {len(state) - 1} tensors of '
            'model.backbone') in log
    losses = train_losses(work)
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    cfg = dumped_config(work, 'child.py')
    assert cfg.model.init_cfg.checkpoint == student
    assert cfg.model.init_cfg.type == 'mmdpal.StrictPretrained'
    assert cfg.train_dataloader.dataset.data_root == data_root
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.model.backbone.arch.embed_dims == 32  # tiny, via mmdpal::

    out = str(tmp_path / 'metrics.json')
    run_in(
        str(user), [
            repo_tool('mmpose', 'test.py'), 'child.py',
            osp.join(work, 'epoch_1.pth'), '--work-dir', work, '--out', out,
            '--cfg-options', *options
        ])
    with open(out) as f:
        metrics = json.load(f)
    assert 0.0 <= metrics['coco/AP'] <= 1.0, metrics
