"""tools/train.py on generated LUPerson-format images with a tiny teacher:
the loss goes down, a killed run resumes from its saved iteration, the
checkpoint holds no teacher, and the student extracts for fine-tuning."""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmdpal_testing import REPO, TINY_CONFIG, run_tool, tiny_cfg_options

import mmdpal  # noqa: F401  (allow-lists what runner checkpoints hold)

pytestmark = pytest.mark.slow


def scalars(work_dir):
    """All logged training records of a work dir, in order."""
    records = []
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            records += [json.loads(line) for line in f if '"loss"' in line]
    return records


def test_train_loss_decreases_kill_and_resume(tiny_data, tmp_path):
    work_dir = str(tmp_path / 'work')
    args = [
        'tools/train.py', TINY_CONFIG, '--work-dir', work_dir, '--cfg-options',
        *tiny_cfg_options(str(tiny_data)), 'train_cfg.max_epochs=40'
    ]
    # 1) start a long run and kill -9 it once epoch 2 is saved
    proc = subprocess.Popen([sys.executable, *args],
                            cwd=REPO,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE,
                            text=True,
                            start_new_session=True)
    deadline = time.time() + 300
    while not osp.exists(osp.join(work_dir, 'epoch_2.pth')):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.time() < deadline, 'no checkpoint after 300 s'
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        last = f.read().strip()
    saved = torch.load(last, map_location='cpu', weights_only=True)
    saved_iter = saved['meta']['iter']
    assert saved_iter >= 8 and saved_iter % 4 == 0  # 4 iterations an epoch
    # the checkpoint holds student + decoder, never the teacher
    keys = list(saved['state_dict'])
    assert not any(k.startswith('teacher.') for k in keys)
    assert any(k.startswith('backbone.') for k in keys)
    assert any(k.startswith('decoder.') for k in keys)
    first_run = scalars(work_dir)

    # 2) resume: it continues from the saved iteration, to epoch 8
    resume_args = args[:-1] + ['train_cfg.max_epochs=8', '--resume']
    result = run_tool(resume_args, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert f'resumed epoch: {saved_iter // 4}, iter: {saved_iter}' in log
    assert osp.exists(osp.join(work_dir, 'epoch_8.pth'))
    resumed = [r for r in scalars(work_dir) if r not in first_run]
    assert resumed[0]['iter'] == saved_iter + 1
    assert resumed[-1]['iter'] == 32

    # 3) the loss went down: first 4 iterations vs the last 4
    start = sum(r['loss'] for r in first_run[:4]) / 4
    end = sum(r['loss'] for r in resumed[-4:]) / 4
    assert end < 0.7 * start, (start, end)
    for term in ('loss_global', 'loss_local', 'loss_relation'):
        assert term in resumed[-1]

    # 4) the student extracts and loads into mmpretrain's ViT, 0 missing keys
    student = str(tmp_path / 'student.pth')
    result = run_tool([
        'tools/model_converters/extract_student.py',
        osp.join(work_dir, 'epoch_8.pth'), student
    ])
    assert result.returncode == 0, result.stderr
    from mmpretrain.models import VisionTransformer
    vit = VisionTransformer(
        arch=dict(
            embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
        img_size=(64, 32),
        patch_size=8,
        out_type='raw',
        init_cfg=dict(
            type='Pretrained', checkpoint=student, prefix='backbone.'))
    state = torch.load(student, weights_only=True)['state_dict']
    missing, unexpected = vit.load_state_dict(
        {
            k[len('backbone.'):]: v
            for k, v in state.items()
        }, strict=True)
    assert not missing and not unexpected
    vit.init_weights()  # the init_cfg route a downstream config takes
    final = torch.load(osp.join(work_dir, 'epoch_8.pth'), weights_only=True)
    torch.testing.assert_close(vit.pos_embed,
                               final['state_dict']['backbone.pos_embed'])
