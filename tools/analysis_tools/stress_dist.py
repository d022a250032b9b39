"""Stress check of multi-process runs: N consecutive 2-process CPU trainings
(``tools/dist_train.sh``, the tiny Table-6 config) and tests
(``tools/dist_test.sh``, the tiny COCO-keypoint chain) while a load
generator keeps every core busy. Prints how many exited 0, the last lines
of each failure and the time; exits 1 if any run failed.

    python tools/analysis_tools/stress_dist.py N [--load K] [--work-dir DIR]
        [--timeout S] [--keep]

The data (generated LUPerson-format crops, a tiny teacher, COCO keypoint
images and a tiny downstream checkpoint) are written once into the work
directory by the test suite's generators (``tests/mmdpal_testing.py``), so
run it from a checkout of the repository. ``--load K`` starts K busy
processes (default: one per core) before the first run and stops them
after the last; ``--load 0`` runs on an idle machine. docs/distributed.md
gives the measured counts.
"""
import argparse
import logging
import multiprocessing
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from mmdpal.utils import silence_stack_deprecations

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(REPO, 'tests'))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('runs', type=int, help='trainings and tests to run')
    parser.add_argument(
        '--load',
        type=int,
        default=os.cpu_count(),
        help='busy processes kept running meanwhile (default: one per core)')
    parser.add_argument('--work-dir', help='default: a temporary folder')
    parser.add_argument(
        '--timeout',
        type=float,
        default=600,
        help='seconds one launcher may run before it counts as hung')
    parser.add_argument(
        '--keep', action='store_true', help='keep the work dir afterwards')
    return parser.parse_args()


def busy() -> None:
    """A load generator: one core at 100% until terminated."""
    x = 0
    while True:
        x = (x * 31 + 7) % 1000003


def prepare(root: str) -> dict:
    """The data, the teacher and the downstream checkpoint of the runs."""
    import torch
    from mmdpal_testing import (TINY_CONFIG, TINY_CONFIGS, build_with_student,
                                make_student, mmpose_data_options,
                                save_tiny_teacher, tiny_cfg_options,
                                write_backgrounds, write_coco_keypoints,
                                write_person_images)
    lup = osp.join(root, 'lup')
    write_person_images(osp.join(lup, 'images'), 16)
    write_backgrounds(osp.join(lup, 'backgrounds'))
    save_tiny_teacher(osp.join(lup, 'teacher.pth'))
    coco = osp.join(root, 'coco')
    val = write_coco_keypoints(coco, 'val', num_images=3, seed=1)
    test_config = osp.join(TINY_CONFIGS, 'tiny_mmpose_coco.py')
    student, _ = make_student(osp.join(coco, 'student'))
    model = build_with_student(test_config, 'mmpose', student)
    checkpoint = osp.join(coco, 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), checkpoint)
    return dict(
        train=[
            'bash', 'tools/dist_train.sh', TINY_CONFIG, '2', '--cfg-options',
            *tiny_cfg_options(lup), 'train_cfg.max_epochs=2'
        ],
        test=[
            'bash', 'tools/dist_test.sh', test_config,
            checkpoint, '2', '--cfg-options', *mmpose_data_options(
                coco, val['ann_file'], val['ann_file'], val['img_prefix'])
        ])


def free_port() -> str:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return str(s.getsockname()[1])


def launch(command: list, work_dir: str, timeout: float) -> tuple:
    """Run one launcher in its own session; returns (exit code or 'hung',
    seconds, the output's last lines)."""
    start = time.time()
    env = dict(
        os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PORT=free_port())
    proc = subprocess.Popen([*command, '--work-dir', work_dir],
                            cwd=REPO,
                            env=env,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        output, _ = proc.communicate()
        code = 'hung'
    tail = '\n'.join(output.strip().splitlines()[-8:])
    return code, time.time() - start, tail


def main():
    args = parse_args()
    root = args.work_dir or tempfile.mkdtemp(prefix='stress_dist_')
    os.makedirs(root, exist_ok=True)
    print(f'preparing data in {root}', flush=True)
    logging.disable(logging.INFO)  # the model's initialisation report
    commands = prepare(root)
    logging.disable(logging.NOTSET)
    load = [
        multiprocessing.Process(target=busy, daemon=True)
        for _ in range(args.load)
    ]
    for p in load:
        p.start()
    print(
        f'{args.load} busy processes started; {args.runs} runs of '
        f'{" and ".join(commands)}',
        flush=True)
    start = time.time()
    failures, exits = [], {name: 0 for name in commands}
    try:
        for i in range(1, args.runs + 1):
            for name, command in commands.items():
                work = osp.join(root, f'{name}_{i}')
                code, seconds, tail = launch(command, work, args.timeout)
                print(
                    f'run {i:3d} {name:5s}: exit {code} in {seconds:.1f} s',
                    flush=True)
                if code == 0:
                    exits[name] += 1
                    shutil.rmtree(work, ignore_errors=True)
                else:
                    failures.append((i, name, code, tail))
    finally:
        for p in load:
            p.terminate()
        for p in load:
            p.join()
    minutes = (time.time() - start) / 60
    print(f'\n{args.runs} runs under load {args.load} in {minutes:.1f} min: ' +
          ', '.join(f'{name} {n}/{args.runs} exited 0'
                    for name, n in exits.items()))
    for i, name, code, tail in failures:
        print(f'\n-- run {i} {name}: exit {code}; last lines:\n{tail}')
    if not args.keep and not failures and not args.work_dir:
        shutil.rmtree(root, ignore_errors=True)
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    silence_stack_deprecations()
    main()
