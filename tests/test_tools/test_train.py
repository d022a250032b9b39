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
    """The logged training records of each run in a work dir (one list per
    run, oldest first)."""
    runs = []
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            runs.append([
                json.loads(line) for line in f
                if line.endswith("\n") and "\"loss\"" in line
            ])
    return runs


LOSS_KEYS = ('loss', 'loss_global', 'loss_local', 'loss_relation')
# one BLAS thread: several times faster than two on the shared 2-core CI
ONE_THREAD = dict(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')


def loss_curve(records):
    """{iteration: (loss, loss_global, loss_local, loss_relation)}."""
    return {r['iter']: tuple(r[k] for k in LOSS_KEYS) for r in records}


@pytest.fixture(scope='module')
def uninterrupted(tiny_data, tmp_path_factory):
    """8 epochs (32 iterations) in one go, 0 dataloader workers."""
    work_dir = str(tmp_path_factory.mktemp('uninterrupted'))
    result = run_tool([
        'tools/train.py', TINY_CONFIG, '--work-dir', work_dir, '--cfg-options',
        *tiny_cfg_options(str(tiny_data)), 'train_cfg.max_epochs=8'
    ],
                      env=ONE_THREAD)
    assert result.returncode == 0, result.stderr[-3000:]
    (records, ) = scalars(work_dir)
    assert [r['iter'] for r in records] == list(range(1, 33))
    return work_dir, loss_curve(records)


def kill_and_resume(tiny_data, work_dir, options=()):
    """Start a 40-epoch run, kill -9 it (with its dataloader workers) once
    epoch 2 is saved, resume it to epoch 8.

    Returns:
        tuple: The iteration of the checkpoint resumed from, the records
        the killed run logged and those of the resumed run.
    """
    args = [
        'tools/train.py', TINY_CONFIG, '--work-dir', work_dir, '--cfg-options',
        *tiny_cfg_options(str(tiny_data)), *options, 'train_cfg.max_epochs=40'
    ]
    proc = subprocess.Popen([sys.executable, *args],
                            cwd=REPO,
                            env=dict(os.environ, **ONE_THREAD),
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
    saved_iter = torch.load(
        last, map_location='cpu', weights_only=True)['meta']['iter']
    assert saved_iter >= 8 and saved_iter % 4 == 0  # 4 iterations an epoch
    (killed, ) = scalars(work_dir)

    result = run_tool(
        args[:-1] + ['train_cfg.max_epochs=8', '--resume'], env=ONE_THREAD)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert f'resumed epoch: {saved_iter // 4}, iter: {saved_iter}' in log
    _, resumed = scalars(work_dir)
    assert [r['iter'] for r in resumed] == list(range(saved_iter + 1, 33))
    return saved_iter, killed, resumed


def test_train_loss_decreases_kill_and_resume_exactly(uninterrupted, tiny_data,
                                                      tmp_path):
    """0 dataloader workers: the resumed run logs, bit for bit, the losses
    of the uninterrupted run (augmentations, shuffling and every other draw
    derived from seed, epoch, iteration and sample)."""
    reference_dir, reference = uninterrupted
    work_dir = str(tmp_path / 'work')
    saved_iter, killed, resumed = kill_and_resume(tiny_data, work_dir)
    assert loss_curve(killed) == {i: reference[i] for i in loss_curve(killed)}
    assert loss_curve(resumed) == {
        i: reference[i]
        for i in range(saved_iter + 1, 33)
    }
    # the checkpoint holds student + decoder, never the teacher
    last = osp.join(work_dir, f'epoch_{saved_iter // 4}.pth')
    keys = list(
        torch.load(last, map_location='cpu', weights_only=True)['state_dict'])
    assert not any(k.startswith('teacher.') for k in keys)
    assert any(k.startswith('backbone.') for k in keys)
    assert any(k.startswith('decoder.') for k in keys)
    assert osp.exists(osp.join(work_dir, 'epoch_8.pth'))

    # the loss went down: first 4 iterations vs the last 4
    start = sum(reference[i][0] for i in range(1, 5)) / 4
    end = sum(reference[i][0] for i in range(29, 33)) / 4
    assert end < 0.7 * start, (start, end)

    # the student extracts and loads into mmpretrain's ViT, 0 missing keys
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


def test_resume_with_persistent_workers_is_exact(uninterrupted, tiny_data,
                                                 tmp_path):
    """2 persistent dataloader workers, killed with the trainer and resumed:
    the same losses again, bit for bit, as the 0-worker uninterrupted run
    (each sample's draws do not depend on the worker that loads it)."""
    _, reference = uninterrupted
    saved_iter, killed, resumed = kill_and_resume(
        tiny_data, str(tmp_path / 'work'), [
            'train_dataloader.num_workers=2',
            'train_dataloader.persistent_workers=True'
        ])
    assert loss_curve(killed) == {i: reference[i] for i in loss_curve(killed)}
    assert loss_curve(resumed) == {
        i: reference[i]
        for i in range(saved_iter + 1, 33)
    }


def test_no_validate_drops_the_validation_loop(monkeypatch):
    """``--no-validate`` as in mmpose's tools/train.py: a downstream config
    trains without its val loop; without the flag the loop stays."""
    import importlib.util

    from mmengine.config import Config
    spec = importlib.util.spec_from_file_location(
        'train_tool', osp.join(REPO, 'tools', 'train.py'))
    train_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_tool)
    config = osp.join(REPO, 'tests', 'test_downstream', 'configs',
                      'tiny_mmpose_coco.py')
    monkeypatch.setenv('LOCAL_RANK', '0')
    for flags, validates in (([], True), (['--no-validate'], False)):
        monkeypatch.setattr(sys, 'argv', ['train.py', config, *flags])
        cfg = train_tool.merge_args(
            Config.fromfile(config), train_tool.parse_args())
        for key in ('val_cfg', 'val_dataloader', 'val_evaluator'):
            assert (cfg.get(key) is not None) == validates, key
