"""The ground: registry scope, cross-repo configs, checkpoints, set-up, CI."""
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmdpal_testing import REPO
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope, init_default_scope
from mmengine.runner import Runner

import mmdpal  # noqa: F401  (registers modules, checkpoint globals)
from mmdpal.registry import MODELS
from mmdpal.utils import load_third_party_checkpoint, register_all_modules


def test_registry_scope_is_a_child_of_mmpretrain():
    from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
    assert MODELS.scope == 'mmdpal'
    assert MODELS.parent is MMPRETRAIN_MODELS
    register_all_modules()
    assert DefaultScope.get_current_instance().scope_name == 'mmdpal'
    # mmpretrain's parts and mmdpal's parts build from the same registry
    vit = MODELS.build(dict(type='VisionTransformer', arch='deit-tiny'))
    assert type(vit).__module__.startswith('mmpretrain')
    vit2 = MODELS.build(
        dict(type='mmpretrain.VisionTransformer', arch='deit-tiny'))
    assert type(vit2) is type(vit)
    dec = MODELS.build(dict(type='LinearDecoder', in_dims=4, out_dims=8))
    assert type(dec).__module__.startswith('mmdpal')


def test_mmdpal_parts_resolve_from_other_scopes():
    init_default_scope('mmdet')
    from mmdet.registry import MODELS as MMDET_MODELS
    dec = MMDET_MODELS.build(
        dict(type='mmdpal.LinearDecoder', in_dims=4, out_dims=8))
    assert type(dec).__name__ == 'LinearDecoder'
    init_default_scope('mmdpal')


MMPOSE_VITPOSE = ('mmpose::body_2d_keypoint/topdown_heatmap/coco/'
                  'td-hm_ViTPose-small_8xb64-210e_coco-256x192.py')


def test_config_inherits_from_another_repo(tmp_path):
    path = tmp_path / 'child.py'
    path.write_text(
        f"_base_ = '{MMPOSE_VITPOSE}'\n"
        "custom_imports = dict(imports=['mmdpal'], "
        "allow_failed_imports=False)\n"
        "model = dict(backbone=dict(arch=dict(embed_dims=192, num_layers=12,"
        " num_heads=6, feedforward_channels=768), init_cfg=None),"
        " head=dict(in_channels=192))\n")
    cfg = Config.fromfile(str(path))
    assert cfg.default_scope == 'mmpose'
    assert cfg.model.backbone.type == 'mmpretrain.VisionTransformer'
    assert cfg.model.backbone.arch.embed_dims == 192
    assert cfg.model.backbone.patch_cfg.padding == 2  # from the base
    init_default_scope('mmpose')
    from mmpose.registry import MODELS as MMPOSE_MODELS
    model = MMPOSE_MODELS.build(cfg.model)
    out = model.extract_feat(torch.randn(1, 3, 256, 192))
    assert out[0].shape == (1, 192, 16, 12)
    init_default_scope('mmdpal')


def test_default_scope_config_builds_mmdpal_parts(tmp_path):
    path = tmp_path / 'cfg.py'
    path.write_text("default_scope = 'mmdpal'\n"
                    "model = dict(type='MoEDecoder', in_dims=8, out_dims=4,"
                    " num_heads=2)\n")
    cfg = Config.fromfile(str(path))
    init_default_scope(cfg.default_scope)
    assert type(MODELS.build(cfg.model)).__name__ == 'MoEDecoder'


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            return dict(loss=((self.linear(inputs) - data_samples)**2).mean())
        return self.linear(inputs)


def toy_loader():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 2, generator=g)
    y = x.sum(1, keepdim=True)
    return dict(
        dataset=[dict(inputs=x[i], data_samples=y[i]) for i in range(16)],
        sampler=dict(type='DefaultSampler', shuffle=True),
        collate_fn=dict(type='default_collate'),
        batch_size=4)


def toy_runner(work_dir, max_epochs, resume=False):
    return Runner(
        model=ToyModel(),
        work_dir=work_dir,
        train_dataloader=toy_loader(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05)),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        randomness=dict(seed=0),
        resume=resume,
        default_scope='mmdpal')


def test_runner_checkpoint_round_trip_and_resume(tmp_path):
    work_dir = str(tmp_path)
    runner = toy_runner(work_dir, 2)
    runner.train()
    ckpt_path = osp.join(work_dir, 'epoch_2.pth')
    # torch's own default (weights_only=True) loads what the runner wrote
    ckpt = torch.load(ckpt_path)
    assert ckpt['meta']['epoch'] == 2 and ckpt['meta']['iter'] == 8
    assert isinstance(
        ckpt['message_hub']['log_scalars']['train/loss']._log_history,
        np.ndarray)
    weights = runner.model.state_dict()
    # resume continues from the saved epoch and iteration
    resumed = toy_runner(work_dir, 3, resume=True)
    resumed.train()
    assert resumed.epoch == 3 and resumed.iter == 12
    # the resumed run started from the saved weights, not from scratch
    fresh = toy_runner(str(tmp_path / 'other'), 3)
    fresh.load_checkpoint(ckpt_path)
    for k, v in fresh.model.state_dict().items():
        assert torch.equal(v, weights[k])


def test_only_the_exact_mmengine_types_are_allow_listed(tmp_path):
    """Runner checkpoints load with weights_only=True, but arbitrary classes
    (and builtins.getattr) are still refused."""
    safe = {
        f'{g.__module__}.{g.__qualname__}'
        for g in torch.serialization.get_safe_globals()
    }
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in safe
    assert not any('getattr' in g for g in safe)
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'obj': ToyModel()}, path)
    with pytest.raises(Exception, match='Weights only load failed'):
        torch.load(path)


def test_third_party_checkpoints_are_tensors_only(tmp_path):
    good = str(tmp_path / 'good.pth')
    torch.save({'w': torch.ones(2)}, good)
    assert torch.equal(load_third_party_checkpoint(good)['w'], torch.ones(2))
    # a numpy array is fine in our runner checkpoints, but not from a third
    # party: those load without our allow-list
    bad = str(tmp_path / 'bad.pth')
    torch.save({'obj': nn.Linear(1, 1)}, bad)
    with pytest.raises(RuntimeError, match='weights_only=True'):
        load_third_party_checkpoint(bad, what='teacher')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        load_third_party_checkpoint(str(tmp_path / 'missing.pth'))


def readme_blocks():
    with open(osp.join(REPO, 'README.md')) as f:
        text = f.read()
    return re.findall(r'```(?:bash|shell)?\n(.*?)```', text, flags=re.S)


def test_ci_runs_the_readme_commands_exactly():
    blocks = readme_blocks()
    setup_cmd = blocks[0].strip().splitlines()[-1]
    assert setup_cmd == 'bash tools/install.sh'
    test_cmds = [b.strip() for b in blocks if 'pytest' in b]
    assert test_cmds, 'the README gives no test command'
    with open(osp.join(REPO, '.ci', 'run')) as f:
        ci_lines = [line.strip() for line in f]
    # the set-up as written, its output also kept for the conflict check,
    # in a fresh venv (activated as the README says) with an empty cache
    assert setup_cmd + ' 2>&1 | tee "$CI_TMP/install.log"' in ci_lines
    assert 'python3 -m venv "$CI_TMP/venv"' in ci_lines
    assert 'source "$CI_TMP/venv/bin/activate"' in ci_lines
    assert 'export MMDPAL_WHEEL_CACHE="$CI_TMP/cache"' in ci_lines
    assert 'no_pip_conflict "$CI_TMP/install.log"' in ci_lines
    assert test_cmds[0] in ci_lines


def test_import_names_an_unsupported_mmengine():
    """``import mmdpal`` checks the mmcv / mmengine / mmpretrain ranges, as
    the OpenMMLab packages do, and says which version to install."""
    code = ('import mmengine; mmengine.__version__ = "0.9.1"\n'
            'import mmdpal\n')
    result = subprocess.run([sys.executable, '-W', 'ignore', '-c', code],
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith('AssertionError: mmengine==0.9.1 is used but '
                            'incompatible with mmdpal')
    assert 'please install mmengine>=0.10.7, <0.11.0' in error
