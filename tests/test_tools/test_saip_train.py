"""tools/train.py runs the SAIP configs (tiny model, views shrunk by 4) on
generated LUPerson-format images: the Runner, the data pipeline, the data
preprocessor, gradient accumulation and the teacher's EMA together."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmdpal_testing import REPO, run_tool
from mmengine.config import Config

import mmdpal  # noqa: F401  (allow-lists what runner checkpoints hold)

pytestmark = pytest.mark.slow


def tiny_train_config(mode, data_root, path):
    suffix = '_official' if mode == 'official' else ''
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'saip', f'saip_vit-ti_lup1m{suffix}.py'))
    cfg.merge_from_dict(
        Config.fromfile(osp.join(REPO, 'tests', 'data',
                                 'tiny_saip.py')).to_dict())
    pipe = cfg.train_dataloader.dataset.pipeline
    for views, size in zip(pipe[1].transforms, ((64, 32), (64, 32), (32, 16))):
        views[0].size = size
    pipe[1].num_views = [1, 1, 3]
    pipe[2].update(
        size=(56, 56),
        person_size=(32, 16),
        background_dir=osp.join(data_root, 'backgrounds'))
    pipe[2].background_pipeline[0].size = (56, 56)
    cfg.train_dataloader.update(
        batch_size=4, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.update(data_root=data_root, ann_file='')
    # fp32 on the CPU (AmpOptimWrapper needs a GPU); the config's optimizer,
    # parameter rules and accumulation (2 batches here)
    cfg.optim_wrapper = dict(
        type='OptimWrapper',
        accumulative_counts=2,
        optimizer=cfg.optim_wrapper.optimizer,
        paramwise_cfg=cfg.optim_wrapper.paramwise_cfg)
    cfg.train_cfg.max_epochs = 2  # 16 images / 4 = 4 iterations an epoch
    cfg.default_hooks.logger.interval = 1
    cfg.dump(path)
    return path


@pytest.mark.parametrize('mode', ['paper', 'official'])
def test_train_tool_runs_saip(mode, tiny_data, tmp_path):
    config = tiny_train_config(mode, str(tiny_data),
                               str(tmp_path / f'tiny_saip_{mode}.py'))
    work_dir = str(tmp_path / 'work')
    result = run_tool(['tools/train.py', config, '--work-dir', work_dir],
                      env=dict(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1'))
    assert result.returncode == 0, result.stderr[-3000:]
    (path, ) = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    with open(path) as f:
        records = [json.loads(line) for line in f if '"loss"' in line]
    assert [r['iter'] for r in records] == list(range(1, 9))
    terms = {'loss_csm', 'loss_csr', 'loss_css_anchor', 'loss_css_local'}
    if mode == 'official':
        terms.add('loss_attn')
    assert terms <= set(records[0])
    ckpt = torch.load(osp.join(work_dir, 'epoch_2.pth'), map_location='cpu')
    state = ckpt['state_dict']
    assert int(state['teacher.steps']) == 8  # one EMA update per iteration
    # the teacher moved away from its first copy but is not the student
    assert not torch.equal(state['teacher.module.backbone.pos_embed'],
                           state['backbone.pos_embed'])
    # the student extracts for fine-tuning as a DPAL student does
    out = str(tmp_path / 'student.pth')
    result = run_tool([
        'tools/model_converters/extract_student.py',
        osp.join(work_dir, 'epoch_2.pth'), out
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    student = torch.load(out, map_location='cpu')['state_dict']
    assert set(student) == {k for k in state if k.startswith('backbone.')}
