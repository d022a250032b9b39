"""Two training processes on a CPU, started as users start them:
tools/dist_train.sh (torchrun) and tools/slurm_train.sh (srun, here a
stand-in that starts the tasks with Slurm's environment variables).

What the runs wrote is checked: a probe hook (below, imported by the runs
through the config's ``custom_imports``) writes, per rank, the sampler's
indices of every epoch and a digest of the student and decoder weights
before and after training.
"""
import glob
import hashlib
import json
import os
import os.path as osp
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

import pytest
import torch
from mmdpal_testing import (REPO, TINY_CONFIG, save_tiny_teacher,
                            tiny_cfg_options, train_losses, write_backgrounds,
                            write_person_images)
from mmengine.hooks import Hook

from mmdpal.registry import HOOKS

pytestmark = pytest.mark.slow

NUM_GOOD, BAD = 14, ('bad_0.jpg', 'bad_1.jpg')  # 16 images: 8 per rank


@HOOKS.register_module()
class DistProbeHook(Hook):
    """Test probe: per rank, the sampler's indices of every epoch and a
    digest of the student and decoder weights before and after training
    (``probe_rank{r}.json`` in ``out_dir``). ``(rank, iter)`` pairs, 1-based
    iterations: ``nan_at``, that rank's relation loss is NaN there;
    ``raise_at``, that rank raises there; ``sigterm_after``, after that
    iteration SIGTERM goes to that rank and to its launcher (as Slurm
    sends it to every process of a job)."""

    priority = 'LOWEST'  # after DistSamplerSeedHook has set the epoch

    def __init__(self,
                 out_dir,
                 nan_at=None,
                 raise_at=None,
                 sigterm_after=None):
        self.out_dir = out_dir
        self.nan_at = nan_at
        self.raise_at = raise_at
        self.sigterm_after = sigterm_after
        self.record = dict(epochs={})

    @staticmethod
    def digest(runner):
        model = getattr(runner.model, 'module', runner.model)
        sha = hashlib.sha256()
        for key, value in sorted(model.state_dict().items()):
            if key.startswith(('backbone.', 'decoder.')):
                sha.update(key.encode())
                sha.update(value.detach().cpu().numpy().tobytes())
        return sha.hexdigest()

    def before_train(self, runner):
        model = getattr(runner.model, 'module', runner.model)
        self.record.update(
            rank=runner.rank,
            world_size=runner.world_size,
            device=next(model.backbone.parameters()).device.type,
            initial=self.digest(runner))

    def before_train_epoch(self, runner):
        self.record['epochs'][runner.epoch + 1] = [
            int(i) for i in runner.train_dataloader.sampler
        ]

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if self.raise_at == [runner.rank, runner.iter + 1]:
            raise RuntimeError('injected failure')
        if self.nan_at == [runner.rank, runner.iter + 1]:
            model = getattr(runner.model, 'module', runner.model)
            model.relation_loss.register_forward_hook(
                lambda module, args, out: out * float('nan'))

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        if self.sigterm_after == [runner.rank, runner.iter + 1]:
            os.kill(os.getppid(), signal.SIGTERM)  # torchrun
            os.kill(os.getpid(), signal.SIGTERM)

    def after_train(self, runner):
        self.record['final'] = self.digest(runner)
        path = osp.join(self.out_dir, f'probe_rank{runner.rank}.json')
        with open(path, 'w') as f:
            json.dump(self.record, f)


def probe_config(folder, data_root, max_bad_fraction, **probe):
    """The tiny config with the probe, the bad-image check every iteration
    and a short collective timeout (a hang would fail the run in 60 s)."""
    path = osp.join(folder, f'probe_{len(os.listdir(folder))}.py')
    with open(path, 'w') as f:
        f.write(f"""_base_ = {TINY_CONFIG!r}
custom_imports = dict(
    imports=['mmdpal', 'test_dist_train'], allow_failed_imports=False)
custom_hooks = [
    dict(type='FiniteLossHook'),
    dict(type='BadImageLoggerHook', interval=1),
    dict(type='DistProbeHook', out_dir={folder!r}, **{probe!r}),
]
train_dataloader = dict(dataset=dict(max_bad_fraction={max_bad_fraction}))
env_cfg = dict(dist_cfg=dict(timeout=60))
""")
    return [path, '--cfg-options', *tiny_cfg_options(data_root)]


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def run(command, timeout=300, **env):
    """A launcher script in the repo; the probe module importable; one BLAS
    thread per process (2 cores, 2 processes)."""
    env = dict(
        os.environ,
        OMP_NUM_THREADS='1',
        MKL_NUM_THREADS='1',
        PYTHONPATH=os.pathsep.join(
            [osp.join(REPO, 'tests'),
             osp.dirname(__file__)]),
        **env)
    return subprocess.run(
        command,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout)


def logged_losses(work):
    """{iteration: loss record} that rank 0 logged."""
    scalars = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    assert len(scalars) == 1, scalars
    with open(scalars[0]) as f:
        records = [json.loads(line) for line in f if '"loss"' in line]
    return {
        r['iter']: {
            k: v
            for k, v in r.items() if k.startswith('loss')
        }
        for r in records
    }


def logged_iters(work):
    """The iterations whose losses rank 0 logged."""
    return list(logged_losses(work))


def probes(folder):
    records = {}
    for path in glob.glob(osp.join(folder, 'probe_rank*.json')):
        with open(path) as f:
            record = json.load(f)
        records[record['rank']] = record
    return records


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    """16 images, 2 of them undecodable; backgrounds; a tiny teacher."""
    root = tmp_path_factory.mktemp('lup_bad')
    write_person_images(str(root / 'images'), NUM_GOOD)
    for name in BAD:
        (root / 'images' / name).write_bytes(b'not a jpeg')
    write_backgrounds(str(root / 'backgrounds'))
    save_tiny_teacher(str(root / 'teacher.pth'))
    return str(root)


@pytest.fixture(scope='module')
def two_rank_run(data_root, tmp_path_factory):
    """tools/dist_train.sh CONFIG 2: two epochs of 2 iterations."""
    work = str(tmp_path_factory.mktemp('dist_work'))
    config, *options = probe_config(work, data_root, max_bad_fraction=0.2)
    result = run([
        'bash', 'tools/dist_train.sh', config, '2', '--work-dir', work,
        *options, 'train_cfg.max_epochs=2'
    ],
                 PORT=free_port())
    assert result.returncode == 0, result.stderr[-5000:]
    return work, result


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')
def test_one_gpu_trains_two_iterations(data_root, tmp_path):
    """tools/dist_train.sh CONFIG 1 on a GPU (NCCL): 2 iterations of 8."""
    work = str(tmp_path)
    config, *options = probe_config(work, data_root, max_bad_fraction=0.2)
    result = run([
        'bash', 'tools/dist_train.sh', config, '1', '--work-dir', work,
        *options, 'train_cfg.max_epochs=1', 'train_dataloader.batch_size=8'
    ],
                 PORT=free_port())
    assert result.returncode == 0, result.stderr[-5000:]
    record = probes(work)[0]
    assert record['device'] == 'cuda' and record['world_size'] == 1
    assert record['final'] != record['initial']
    assert logged_iters(work) == [1, 2]


def test_two_ranks_train_in_sync_on_disjoint_samples(two_rank_run):
    work, result = two_rank_run
    records = probes(work)
    assert sorted(records) == [0, 1]
    assert all(r['world_size'] == 2 for r in records.values())
    # bit-identical student and decoder on both ranks, moved by training
    assert records[0]['initial'] == records[1]['initial']
    assert records[0]['final'] == records[1]['final']
    assert records[0]['final'] != records[0]['initial']
    # each epoch: disjoint halves covering the 16 images, reshuffled
    for epoch in (1, 2):
        first, second = (records[r]['epochs'][str(epoch)] for r in (0, 1))
        assert len(first) == len(second) == 8
        assert not set(first) & set(second)
        assert sorted(first + second) == list(range(16))
    assert records[0]['epochs']['1'] != records[0]['epochs']['2']


def test_only_rank_0_writes(two_rank_run):
    work, _ = two_rank_run
    logs = glob.glob(osp.join(work, '*', '*.log'))
    assert len(logs) == 1, logs
    assert not [
        p for p in glob.glob(osp.join(work, '**'), recursive=True)
        if 'rank1' in osp.basename(p) and not p.endswith('probe_rank1.json')
    ]
    assert sorted(osp.basename(p)
                  for p in glob.glob(osp.join(work, '*.pth'))) == [
                      'epoch_1.pth', 'epoch_2.pth'
                  ]
    # rank 0's log: 2 iterations an epoch (16 images / 2 ranks / batch 4)
    assert len(train_losses(work)) == 4


def test_bad_images_counted_once_over_ranks_and_epochs(two_rank_run):
    """Each undecodable image is met once an epoch, by one of the ranks:
    4 failures in 2 epochs, 2 distinct images."""
    work, _ = two_rank_run
    with open(glob.glob(osp.join(work, '*', '*.log'))[0]) as f:
        log = f.read()
    counts = [
        line.split('so far: ')[1] for line in log.splitlines()
        if 'undecodable training images skipped so far' in line
    ]
    assert counts[-1] == '2 of 16 (12.500%)', counts
    assert all(c.split(' ')[0] in '012' for c in counts)


def test_checkpoint_resumes_in_one_process(two_rank_run, data_root, tmp_path):
    work, _ = two_rank_run
    config, _, *options = probe_config(
        str(tmp_path), data_root, max_bad_fraction=0.2)
    result = run([
        sys.executable, 'tools/train.py', config, '--work-dir',
        str(tmp_path), '--resume',
        osp.join(work, 'epoch_2.pth'), '--cfg-options', *options,
        'train_cfg.max_epochs=3'
    ])
    assert result.returncode == 0, result.stderr[-5000:]
    assert 'resumed epoch: 2, iter: 4' in result.stdout + result.stderr
    # one process: 4 iterations an epoch, from iteration 5
    assert logged_iters(str(tmp_path)) == [5, 6, 7, 8]
    record = probes(str(tmp_path))[0]
    assert record['world_size'] == 1
    assert record['initial'] == probes(work)[0]['final']


def fake_srun(folder):
    """An ``srun`` for this machine: starts ``--ntasks`` copies of the
    command with Slurm's variables, each writing task{i}.log, and waits for
    all of them (no --kill-on-bad-exit: the ranks must stop by themselves).
    """
    path = osp.join(folder, 'srun')
    with open(path, 'w') as f:
        f.write("""#!/usr/bin/env bash
ntasks=1
while [[ $# -gt 0 && "$1" != python ]]; do
    case "$1" in --ntasks=*) ntasks="${1#--ntasks=}";; esac
    shift
done
shift  # python -> the test's interpreter
for ((i = 0; i < ntasks; i++)); do
    SLURM_PROCID=$i SLURM_NTASKS=$ntasks SLURM_LOCALID=$i \\
        SLURM_NODELIST=localhost "$PYTHON" "$@" >"$SRUN_LOGS/task$i.log" 2>&1 &
done
rc=0
for ((i = 0; i < ntasks; i++)); do wait -n || rc=$?; done
exit $rc
""")
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
    return folder


def test_resume_with_slurm_and_nan_on_one_rank_stops_both(
        two_rank_run, data_root, tmp_path):
    """tools/slurm_train.sh with 2 tasks resumes the 2-rank checkpoint;
    rank 1's relation loss turns NaN at iteration 6: both ranks stop there
    with the term, the iteration and the rank named (no hang: each rank
    would wait 60 s in a collective before failing otherwise)."""
    work, _ = two_rank_run
    config, _, *options = probe_config(
        str(tmp_path), data_root, max_bad_fraction=0.2, nan_at=[1, 6])
    bin_dir = fake_srun(str(tmp_path))
    result = run([
        'bash', 'tools/slurm_train.sh', 'cpu', 'dpal', config,
        str(tmp_path / 'work'), '--resume',
        osp.join(work, 'epoch_2.pth'), '--cfg-options', *options,
        'train_cfg.max_epochs=4'
    ],
                 timeout=240,
                 PATH=bin_dir + os.pathsep + os.environ['PATH'],
                 PYTHON=sys.executable,
                 SRUN_LOGS=str(tmp_path),
                 GPUS='2',
                 GPUS_PER_NODE='2',
                 MASTER_PORT=free_port(),
                 MASTER_ADDR='127.0.0.1')
    assert result.returncode != 0
    message = ('loss_relation is nan at iteration 6 (epoch 3) on rank 1 of '
               '2')
    logs = [(tmp_path / f'task{rank}.log').read_text() for rank in (0, 1)]
    for log in logs:
        assert message in log, log[-3000:]
        assert 'Timeout' not in log and 'timed out' not in log
    # resumed across 2 ranks: iteration 5 trained and logged by rank 0
    assert 'resumed epoch: 2, iter: 4' in logs[0]
    assert logged_iters(str(tmp_path / 'work')) == [5]
    assert not glob.glob(str(tmp_path / 'work' / 'epoch_3.pth'))


def test_sigterm_mid_epoch_checkpoints_and_the_resumed_run_is_uninterrupted(
        two_rank_run, data_root, tmp_path):
    """SIGTERM to both ranks and to torchrun after iteration 2: every rank
    finishes iteration 3 (the first of epoch 2), writes iter_3.pth and
    exits; ``--resume`` continues with iteration 4, and the losses and
    final weights equal those of the uninterrupted run (two_rank_run:
    the same config, 2 epochs of 2 iterations)."""
    uninterrupted, _ = two_rank_run
    work = str(tmp_path / 'work')
    os.makedirs(work)
    config, *options = probe_config(
        work, data_root, max_bad_fraction=0.2, sigterm_after=[0, 2])
    command = [
        'bash', 'tools/dist_train.sh', config, '2', '--work-dir', work,
        *options, 'train_cfg.max_epochs=2'
    ]
    killed = run(command, PORT=free_port())
    output = killed.stdout + killed.stderr
    assert killed.returncode != 0, output[-3000:]
    for rank in (0, 1):
        assert (f'mmdpal: rank {rank} of 2: SIGTERM: stopped after '
                'iteration 3 (epoch 2); checkpoint iter_3.pth') in output
    assert sorted(osp.basename(p)
                  for p in glob.glob(osp.join(work, '*.pth'))) == [
                      'epoch_1.pth', 'iter_3.pth'
                  ]
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work, 'iter_3.pth')
    before = logged_losses(work)
    assert list(before) == [1, 2, 3]
    # the killed run's log aside: logged_losses reads the resumed run's
    shutil.move(glob.glob(osp.join(work, '2*'))[0], str(tmp_path / 'killed'))

    # tools/train.py --resume: the checkpoint named in last_checkpoint
    config, *options = probe_config(work, data_root, max_bad_fraction=0.2)
    resumed = run([*command[:2], config, *command[3:], '--resume'],
                  PORT=free_port())
    assert resumed.returncode == 0, resumed.stderr[-5000:]
    assert 'resumed epoch: 1, iter: 3' in resumed.stdout + resumed.stderr
    assert ('resumed mid-epoch: the first 1 iterations of epoch 2 were '
            'trained before the checkpoint') in resumed.stdout + resumed.stderr
    after = logged_losses(work)
    assert list(after) == [4]
    assert {**before, **after} == logged_losses(uninterrupted)
    assert probes(work)[0]['final'] == probes(uninterrupted)[0]['final']


def test_an_error_on_one_rank_stops_every_rank_naming_it(data_root, tmp_path):
    """Rank 1 raises at iteration 3 while rank 0 waits for it in the
    gradient all-reduce: both stop well before the 60 s collective timeout,
    the launcher fails, the first mmdpal line names rank 1 and the error,
    and torchrun's summary gives rank 1 as the root cause."""
    config, *options = probe_config(
        str(tmp_path), data_root, max_bad_fraction=0.2, raise_at=[1, 3])
    start = time.monotonic()
    result = run([
        'bash', 'tools/dist_train.sh', config, '2', '--work-dir',
        str(tmp_path), *options, 'train_cfg.max_epochs=2'
    ],
                 PORT=free_port())
    assert time.monotonic() - start < 60
    assert result.returncode != 0
    output = result.stdout + result.stderr
    lines = [
        line for line in output.splitlines() if line.startswith('mmdpal:')
    ]
    assert lines[0] == ('mmdpal: rank 1 of 2 at iteration 3 (epoch 2) failed: '
                        'RuntimeError: injected failure'), lines
    root_cause = output.split('Root Cause (first observed failure):')[1]
    assert 'rank      : 1 (local_rank: 1)' in root_cause
    assert 'injected failure' in root_cause


def test_too_many_bad_images_over_ranks_stop_the_run(data_root, tmp_path):
    """2 of 16 images undecodable, max_bad_fraction=0.1 (1.6 images): the
    run fails, whether the two images fall on one rank or one on each.
    This run uses the config's ``runner_type``: mmengine's FlexibleRunner
    with its DDP strategy."""
    config, _, *options = probe_config(
        str(tmp_path), data_root, max_bad_fraction=0.1)
    result = run([
        'bash', 'tools/dist_train.sh', config, '2', '--work-dir',
        str(tmp_path), '--cfg-options', *options, 'train_cfg.max_epochs=1',
        'runner_type=FlexibleRunner', 'strategy.type=DDPStrategy'
    ],
                 PORT=free_port())
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert ('2 of 16 images could not be decoded, more than '
            'max_bad_fraction=0.1') in output
    assert '_flexible_runner.py' in output
    assert not glob.glob(str(tmp_path / 'epoch_1.pth'))


@pytest.mark.skipif(
    torch.cuda.is_available(), reason='with CUDA, mmengine sets up NCCL')
@pytest.mark.parametrize('launcher', ['pytorch', 'slurm'])
def test_launcher_without_its_environment_says_how_to_start(
        launcher, monkeypatch):
    from mmengine.config import Config

    from mmdpal.utils import setup_cpu_distributed
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'SLURM_PROCID',
                 'SLURM_NTASKS', 'SLURM_LOCALID'):
        monkeypatch.delenv(name, raising=False)
    cfg = Config(dict(launcher=launcher))
    with pytest.raises(
            RuntimeError,
            match=f'--launcher {launcher} but .* '
            'not set: start the job with tools/dist_train.sh'):
        setup_cpu_distributed(cfg)
    assert not setup_cpu_distributed(Config(dict(launcher='none')))
