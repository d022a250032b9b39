"""Measure DPAL pretraining speed: the data pipeline and the training step.

    python tools/analysis_tools/benchmark_pretrain.py \
        configs/dpal/vit-ti_path-b_lup1m.py [--images DIR --backgrounds DIR]
        [--batch-size 8] [--iters 10] [--device cuda] [--tflops 989]
        [--compare GIT_REF_OR_DIR] [--rounds 3] [--skip-train] [--json OUT]

Reports, for the config's train pipeline and model:

* data: samples per CPU second of the train pipeline in ONE process with
  one thread (what one dataloader worker process does on one core; OpenCV
  and torch threads set as mmengine sets them in workers; CPU time, so that
  other load on the machine does not count), and the wall-clock samples/s,
  on real JPEG files: the folders given, or generated person crops
  (``--image-size``) and backgrounds (``--background-size``); and the CPU
  time of each pipeline stage;
* train: samples/s of full training steps (data preprocessor, teacher,
  student, decoder, losses, backward + optimizer step) on random uint8
  views of the pipeline's sizes; the time split of a step (measured in
  extra steps with a device sync at every module boundary); peak memory;
* FLOPs per sample of one training step (forward + backward), counted by
  ``torch.utils.flop_counter`` (matmul, convolution and attention kernels,
  forward and backward; elementwise ops not counted), and the samples/s
  they allow at ``--tflops`` (the device's dense peak).

``--compare REF`` measures another version in the same invocation: REF is
a git ref (checked out with ``git worktree add`` into a temporary folder,
removed afterwards) or the folder of another checkout, each with its own
``mmdpal`` package first on PYTHONPATH and its own copy of the config (same
relative path); or REF is a second config file, run with this tree. Each
side runs in its own subprocess on the same images; the runs alternate
(old, new, new, old, ...) over ``--rounds`` rounds to cancel drift, and the
medians and the ratios new / old are printed.

The teacher gets random weights unless --teacher-checkpoint is given: speed
does not depend on the values.
"""
import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from functools import partial

import numpy as np

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


# ------------------------------------------------------------------ images
def write_images(folder, num, size, seed, person):
    """``num`` JPEGs of ``size`` (h, w): a person-like figure on a textured
    background (``person``) or a textured scene, quality 95."""
    import cv2
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    H, W = size
    for i in range(num):
        small = rng.integers(0, 255, (max(H // 8, 1), max(W // 8, 1), 3))
        img = cv2.resize(small.astype(np.uint8), (W, H))
        img = cv2.add(img, rng.integers(0, 30, (H, W, 3), dtype=np.uint8))
        if person:
            cx = int(rng.integers(W // 3, 2 * W // 3 + 1))
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            cv2.circle(img, (cx, H // 6), max(H // 14, 2), colour, -1)
            cv2.rectangle(img, (cx - W // 6, H // 4),
                          (cx + W // 6, 3 * H // 5), colour, -1)
            cv2.rectangle(img, (cx - W // 8, 3 * H // 5), (cx + W // 8, H - 2),
                          tuple(255 - c for c in colour), -1)
        cv2.imwrite(
            osp.join(folder, f'{i:05d}.jpg'), img,
            [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder


# ------------------------------------------------------------ measurement
def build_dataset(cfg, images, backgrounds):
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdpal'))
    from mmdpal.registry import DATASETS
    ds_cfg = cfg.train_dataloader.dataset.copy()
    ds_cfg.update(data_root=images, ann_file='', data_prefix=dict(img_path=''))
    for t in ds_cfg.pipeline:
        if t['type'].endswith('CopyPasteMultiPerson'):
            t['background_dir'] = backgrounds
    return DATASETS.build(ds_cfg)


def measure_data(ds, num, warmup=5):
    """Samples per CPU second of ``ds[i]`` in this process (one thread: the
    samples/s of one core, whatever else the machine runs), the wall-clock
    samples/s, and the CPU ms per sample of each stage of the pipeline (the
    transforms run one by one)."""
    import cv2
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a dataloader worker
    cv2.setNumThreads(0)  # mmengine's default opencv_num_threads=0
    try:
        np.random.seed(0)
        for i in range(warmup):
            ds[i % len(ds)]
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(num):
            ds[i % len(ds)]
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu
        stages = defaultdict(float)
        np.random.seed(0)
        for i in range(num):
            results = ds.get_data_info(i % len(ds))
            for t in ds.pipeline.transforms:
                t0 = time.process_time()
                results = t(results)
                stages[type(t).__name__] += time.process_time() - t0
    finally:
        torch.set_num_threads(threads)
    return dict(
        samples_per_s=num / cpu,
        ms_per_sample=1e3 * cpu / num,
        wall_samples_per_s=num / wall,
        stage_ms={
            k: 1e3 * v / num
            for k, v in stages.items()
        },
        num_samples=num)


def flop_counter(model):
    """A FlopCounterMode that also counts the CPU attention kernels."""
    import torch
    from torch.utils import flop_counter as fc
    aten = torch.ops.aten

    def sdpa(q, k, v, *args, out_shape=None, **kwargs):
        return fc.sdpa_flop_count(q, k, v)

    def sdpa_backward(grad, q, k, v, *args, out_shape=None, **kwargs):
        return fc.sdpa_backward_flop_count(grad, q, k, v)

    mapping = {}
    for name, fn in (('_scaled_dot_product_flash_attention_for_cpu', sdpa),
                     ('_scaled_dot_product_flash_attention_for_cpu_backward',
                      sdpa_backward)):
        if hasattr(aten, name):
            mapping[getattr(aten, name)] = fn
    return fc.FlopCounterMode(display=False, custom_mapping=mapping)


def split_groups(model):
    """Which part of the step each child module of the model is."""
    groups = {}
    for name, module in model.named_children():
        if name == 'backbone':
            groups[name] = 'student'
        elif name.endswith('_loss') or name.endswith('_losses'):
            groups[name] = 'losses'
        elif name in ('teacher', 'decoder', 'data_preprocessor'):
            groups[name] = name
    return groups


def module_flops(counts, name):
    """FLOPs counted in module ``name`` (a key of the flop counter): its own
    count if its forward ran, else the sum over its outermost submodules
    that ran (e.g. the blocks of a ViT run one by one)."""
    keys = [k for k in counts if k == name or k.startswith(name + '.')]
    outermost = [
        k for k in keys
        if not any(k.startswith(other + '.') for other in keys if other != k)
    ]
    return sum(sum(counts[k].values()) for k in outermost)


def build_ema(cfg, model):
    """The averaged copy that the config's ``EMAHook`` keeps (None without
    one), to be updated after every step as the hook does."""
    from mmengine.logging import MessageHub

    from mmdpal.registry import MODELS

    hooks = [h for h in cfg.get('custom_hooks', []) if h.type == 'EMAHook']
    if not hooks:
        return None
    hook = dict(hooks[0])
    ema_type = hook.pop('ema_type', 'ExponentialMovingAverage')
    for key in ('type', 'strict_load', 'begin_iter', 'begin_epoch',
                'priority'):
        hook.pop(key, None)
    # a cosine momentum schedule reads the run's length
    MessageHub.get_current_instance().update_info('max_iters', 10**6)
    return MODELS.build(
        dict(type=ema_type, **hook), default_args=dict(model=model))


def measure_train(cfg, args, sizes):
    import torch
    from mmengine.optim import build_optim_wrapper

    from mmdpal.registry import MODELS

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    batch = args.batch_size or cfg.train_dataloader.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        if args.teacher_checkpoint:
            cfg.model.teacher.checkpoint = args.teacher_checkpoint
        else:
            teacher_vit = MODELS.build(dict(cfg.model.teacher.backbone))
            path = osp.join(tmp, 'random_teacher.pth')
            torch.save(teacher_vit.state_dict(), path)
            cfg.model.teacher.checkpoint = path
        model = MODELS.build(cfg.model)
    model.init_weights()
    model.to(device).train()

    optim_cfg = cfg.optim_wrapper.copy()
    if device.type != 'cuda' and optim_cfg.get('type') == 'AmpOptimWrapper':
        optim_cfg.type = 'OptimWrapper'  # mmengine's AMP refuses CPUs
    if optim_cfg.get('type') != 'AmpOptimWrapper':
        optim_cfg.pop('dtype', None)  # AMP-only settings
        optim_cfg.pop('loss_scale', None)
    optim_wrapper = build_optim_wrapper(model, optim_cfg)
    precision = {
        'AmpOptimWrapper': f"AMP {optim_cfg.get('dtype', 'float16')}",
        'BF16AutocastOptimWrapper': 'bf16 autocast',
    }.get(optim_cfg.get('type'), 'fp32')

    g = torch.Generator().manual_seed(0)
    data = dict(
        inputs=[
            torch.randint(
                0, 256, (batch, 3, h, w), generator=g, dtype=torch.uint8)
            for h, w in sizes
        ],
        data_samples=None)

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    ema = build_ema(cfg, model)

    def step():
        log_vars = model.train_step(data, optim_wrapper)
        if ema is not None:  # as EMAHook.after_train_iter
            ema.update_parameters(model)
        return log_vars

    for _ in range(args.warmup):
        step()
    sync()
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.iters):
        log_vars = step()
    sync()
    seconds = (time.perf_counter() - start) / args.iters

    # the time split: the same step, synced at every module boundary
    spent = defaultdict(float)
    handles, entered = [], {}

    def pre(mod, inputs, name):
        sync()
        entered[name] = time.perf_counter()

    def post(mod, inputs, output, name, group):
        sync()
        spent[group] += time.perf_counter() - entered.pop(name)

    groups = split_groups(model)
    if hasattr(model, 'student_tokens'):
        # the student through the algorithm's method: the authors' 1-D
        # position path runs the backbone's blocks without its forward
        groups.pop('backbone')
        student_tokens = model.student_tokens

        def timed_student(img):
            pre(None, None, 'backbone')
            out = student_tokens(img)
            post(None, None, None, 'backbone', 'student')
            return out

        model.student_tokens = timed_student
    for name, group in groups.items():
        module = getattr(model, name)
        handles.append(
            module.register_forward_pre_hook(partial(pre, name=name)))
        handles.append(
            module.register_forward_hook(
                partial(post, name=name, group=group)))
    total = backward = 0.
    for _ in range(max(1, args.iters // 2)):
        sync()
        t0 = time.perf_counter()
        with optim_wrapper.optim_context(model):
            inputs = model.data_preprocessor(data, True)
            losses = model._run_forward(inputs, mode='loss')
        parsed, _ = model.parse_losses(losses)
        sync()
        t1 = time.perf_counter()
        optim_wrapper.update_params(parsed)
        sync()
        t2 = time.perf_counter()
        total += t2 - t0
        backward += t2 - t1
    for h in handles:
        h.remove()
    model.__dict__.pop('student_tokens', None)
    n = max(1, args.iters // 2)
    split = {k: v / n for k, v in spent.items()}
    split['backward_optimizer'] = backward / n
    split['other'] = total / n - sum(split.values())

    with flop_counter(model) as counter:
        step()
    flops = counter.get_total_flops() / batch
    by_module = {}
    counts = counter.get_flop_counts()
    for name, group in split_groups(model).items():
        flops_of = module_flops(counts, f'{type(model).__name__}.{name}')
        by_module[group] = by_module.get(group, 0) + flops_of / batch

    if device.type == 'cuda':
        peak = torch.cuda.max_memory_allocated(device) / 2**30
        where = torch.cuda.get_device_name(device)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        where = f'{torch.get_num_threads()} threads'
    return dict(
        device=f'{device} ({where})',
        precision=precision + (' + EMA' if ema is not None else ''),
        batch=batch,
        samples_per_s=batch / seconds,
        s_per_iter=seconds,
        split_s=split,
        peak_memory_gb=peak,
        peak_memory_kind='max allocated'
        if device.type == 'cuda' else 'process max RSS',
        gflops_per_sample=flops / 1e9,
        gflops_per_sample_by_part={
            k: v / 1e9
            for k, v in by_module.items()
        },
        last_losses={
            k: round(float(v.detach()), 4)
            for k, v in log_vars.items()
        },
        params_m={
            'student':
            sum(p.numel() for p in model.backbone.parameters()) / 1e6,
            'decoder':
            sum(p.numel() for p in model.decoder.parameters()) / 1e6,
            'teacher': sum(p.numel()
                           for p in model.teacher.parameters()) / 1e6,
        })


def measure(args):
    """One version's measurement, in this process (``mmdpal`` as imported)."""
    from mmengine.config import Config

    import mmdpal
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    ds = build_dataset(cfg, args.images, args.backgrounds)
    report = dict(
        config=args.config,
        package=osp.dirname(osp.abspath(mmdpal.__file__)),
        images=args.images,
        backgrounds=args.backgrounds)
    np.random.seed(0)
    sample = ds[0]
    sizes = [tuple(v.shape[-2:]) for v in sample['inputs']]
    report['views'] = sizes
    if not args.skip_data:
        report['data'] = measure_data(ds, args.data_samples)
    if not args.skip_train:
        report['train'] = measure_train(cfg, args, sizes)
        if args.tflops:
            report['train']['ceiling_samples_per_s'] = \
                args.tflops * 1e3 / report['train']['gflops_per_sample']
    return report


# ---------------------------------------------------------------- printing
def print_report(r, tflops=None):
    print(f"config: {r['config']}  (mmdpal from {r['package']})")
    print(f"views: {r['views']}")
    if 'data' in r:
        d = r['data']
        print(f"data pipeline, 1 process x 1 thread: "
              f"{d['samples_per_s']:.1f} samples per CPU second "
              f"({d['ms_per_sample']:.2f} CPU ms/sample; wall clock "
              f"{d['wall_samples_per_s']:.1f} samples/s; "
              f"{d['num_samples']} samples)")
        print('  stages (CPU ms/sample): ' +
              ', '.join(f'{k} {v:.2f}' for k, v in d['stage_ms'].items()))
    if 'train' in r:
        t = r['train']
        print(f"train: {t['device']}, {t['precision']}, batch {t['batch']}:"
              f" {t['samples_per_s']:.1f} samples/s "
              f"({t['s_per_iter']:.3f} s/iter)")
        print('  split (s/iter): ' +
              ', '.join(f'{k} {v:.3f}' for k, v in t['split_s'].items()))
        print(f"  peak memory: {t['peak_memory_gb']:.2f} GB "
              f"({t['peak_memory_kind']})")
        print(f"  FLOPs per sample (fwd + bwd, torch flop_counter): "
              f"{t['gflops_per_sample']:.2f} G (" +
              ', '.join(f'{k} {v:.2f}'
                        for k, v in t['gflops_per_sample_by_part'].items()) +
              ')')
        if 'ceiling_samples_per_s' in t:
            print(f'  ceiling at {tflops} TFLOP/s: '
                  f"{t['ceiling_samples_per_s']:.0f} samples/s")
        print('  params (M): ' + ', '.join(f'{k} {v:.2f}'
                                           for k, v in t['params_m'].items()))
        print(f"  last losses: {t['last_losses']}")


def comparable(report):
    """The numbers a comparison shows: name -> value (higher is better for
    samples/s, lower for times)."""
    out = {}
    if 'data' in report:
        out['data samples/s'] = report['data']['samples_per_s']
        out['data wall samples/s'] = report['data']['wall_samples_per_s']
        for k, v in report['data']['stage_ms'].items():
            out[f'data {k} ms'] = v
    if 'train' in report:
        out['train samples/s'] = report['train']['samples_per_s']
        for k, v in report['train']['split_s'].items():
            out[f'train {k} s'] = v
        out['train GFLOPs/sample'] = report['train']['gflops_per_sample']
    return out


# ---------------------------------------------------------------- compare
def other_checkout(ref, tmp):
    """The root of the version to compare with, and a clean-up function."""
    if osp.isdir(ref):
        return osp.abspath(ref), lambda: None
    if osp.isfile(ref) and ref.endswith('.py'):  # a second config
        return REPO, lambda: None
    path = osp.join(tmp, 'compare')
    result = subprocess.run(
        ['git', '-C', REPO, 'worktree', 'add', '--detach', path, ref],
        capture_output=True,
        text=True)
    if result.returncode != 0:
        sys.exit(f'--compare {ref}: not a folder and `git worktree add` '
                 f'failed: {result.stderr.strip()}')

    def remove():
        subprocess.run(
            ['git', '-C', REPO, 'worktree', 'remove', '--force', path],
            capture_output=True)

    return path, remove


def run_child(root, config, args, argv, out):
    """This script on the version at ``root``: its copy of ``config`` (for
    a config inside this repository), its package."""
    config = osp.abspath(config)
    if config.startswith(REPO + os.sep):  # the other version's copy
        config = osp.join(root, osp.relpath(config, REPO))
    if not osp.isfile(config):
        sys.exit(f'the config {args.config} does not exist in {root}')
    env = dict(os.environ)
    env['PYTHONPATH'] = root + os.pathsep + env.get('PYTHONPATH', '')
    cmd = [
        sys.executable,
        osp.abspath(__file__), config, '--images', args.images,
        '--backgrounds', args.backgrounds, '--json', out
    ] + argv
    result = subprocess.run(
        cmd, cwd=root, env=env, text=True, capture_output=True)
    if result.returncode != 0:
        sys.exit(f'the measurement of {root} failed:\n'
                 f'{result.stdout[-3000:]}\n{result.stderr[-5000:]}')
    with open(out) as f:
        report = json.load(f)
    expected = osp.join(osp.realpath(root), 'mmdpal')
    if osp.realpath(report['package']) != expected:
        sys.exit(f"the run for {root} imported mmdpal from "
                 f"{report['package']}, not from {expected}: an installed "
                 'mmdpal shadows PYTHONPATH (install it in editable mode)')
    return report


def run_order(rounds):
    """Which version runs first in each round: old first, then alternating
    (old, new, new, old, ...), so that a drift of the machine's speed
    affects both alike."""
    return [('old', 'new') if r % 2 == 0 else ('new', 'old')
            for r in range(rounds)]


def compare(args, argv):
    with tempfile.TemporaryDirectory() as tmp:
        old_root, remove = other_checkout(args.compare, tmp)
        try:
            runs = dict(old=[], new=[])
            for r, order in enumerate(run_order(args.rounds)):
                for which in order:
                    root = old_root if which == 'old' else REPO
                    config = args.compare if which == 'old' and osp.isfile(
                        args.compare) else args.config
                    report = run_child(root, config, args, argv,
                                       osp.join(tmp, f'{which}_{r}.json'))
                    runs[which].append(report)
                    speeds = ', '.join(f'{k} {v:.1f}'
                                       for k, v in comparable(report).items()
                                       if k.endswith('samples/s'))
                    print(
                        f'round {r + 1}/{args.rounds}, {which}: {speeds}',
                        flush=True)
        finally:
            remove()
    medians = {
        which: {
            k: float(np.median([comparable(rep)[k] for rep in reports]))
            for k in comparable(reports[0])
        }
        for which, reports in runs.items()
    }
    print('\n=== new (this tree) ===')
    print_report(runs['new'][-1], args.tflops)
    print(f'\n=== old ({args.compare}) ===')
    print_report(runs['old'][-1], args.tflops)
    print(f'\nmedians of {args.rounds} alternating rounds, '
          f'new = {REPO}, old = {args.compare}')
    print(f"{'':34s}{'old':>10s}{'new':>10s}{'new/old':>9s}")
    ratios = {}
    for k, new in medians['new'].items():
        old = medians['old'].get(k)
        if old is None:
            continue
        ratios[k] = new / old if old else float('nan')
        print(f'{k:34s}{old:10.3f}{new:10.3f}{ratios[k]:9.2f}')
    return dict(
        old=runs['old'],
        new=runs['new'],
        medians=medians,
        ratios=ratios,
        compare=args.compare)


# -------------------------------------------------------------------- main
def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument(
        '--images',
        help='folder of person crops for the data pipeline (default: '
        'generated JPEGs)')
    parser.add_argument(
        '--backgrounds',
        help='folder of person-free backgrounds (default: generated JPEGs)')
    parser.add_argument(
        '--image-size',
        type=int,
        nargs=2,
        default=(256, 128),
        help='h w of the generated person crops')
    parser.add_argument(
        '--background-size',
        type=int,
        nargs=2,
        default=(360, 480),
        help='h w of the generated backgrounds')
    parser.add_argument(
        '--data-samples',
        type=int,
        default=200,
        help='samples the data pipeline makes for its measurement')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=None,
        help='per-device batch of the training steps (default: the '
        'config\'s)')
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument(
        '--device',
        default=None,
        help='cuda or cpu (default: cuda when available)')
    parser.add_argument('--teacher-checkpoint', default=None)
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch CPU threads of the training steps (default: torch\'s)')
    parser.add_argument(
        '--tflops',
        type=float,
        default=None,
        help='dense peak TFLOP/s of the device: print the samples/s the '
        'counted FLOPs allow at it')
    parser.add_argument('--skip-data', action='store_true')
    parser.add_argument('--skip-train', action='store_true')
    parser.add_argument(
        '--compare',
        help='measure side by side with: a git ref, the folder of another '
        'checkout (both with the same config path), or a second config file '
        '(in this tree); it is "old" in the printed ratios new / old')
    parser.add_argument(
        '--rounds',
        type=int,
        default=3,
        help='alternating old/new runs with --compare')
    parser.add_argument('--json', help='write the report as json here')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=_dict_action(),
        help='override config settings, as in train.py')
    return parser.parse_args()


def _dict_action():
    from mmengine.config import DictAction
    return DictAction


def child_argv(args):
    """The options a child run of ``--compare`` gets (all but the data
    folders, --json and --compare)."""
    argv = []
    for key in ('data_samples', 'batch_size', 'iters', 'warmup', 'device',
                'teacher_checkpoint', 'threads', 'tflops'):
        value = getattr(args, key)
        if value is not None:
            argv += [f"--{key.replace('_', '-')}", str(value)]
    for key in ('skip_data', 'skip_train'):
        if getattr(args, key):
            argv.append(f"--{key.replace('_', '-')}")
    if args.cfg_options:  # as given on the command line
        start = end = sys.argv.index('--cfg-options') + 1
        while end < len(sys.argv) and not sys.argv[end].startswith('--'):
            end += 1
        argv += ['--cfg-options'] + sys.argv[start:end]
    return argv


def silence_stack_deprecations():
    """mmdpal's entry-point warning filter, where the imported mmdpal has
    one (a ``--compare`` child may run an older version; its output is only
    shown when it fails)."""
    try:
        from mmdpal.utils import silence_stack_deprecations as silence
    except ImportError:
        return
    silence()


def main():
    args = parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.images:
            args.images = write_images(
                osp.join(tmp, 'images'), 64, args.image_size, 0, True)
        if not args.backgrounds:
            args.backgrounds = write_images(
                osp.join(tmp, 'backgrounds'), 16, args.background_size, 1,
                False)
        args.images = osp.abspath(args.images)
        args.backgrounds = osp.abspath(args.backgrounds)
        if args.compare:
            report = compare(args, child_argv(args))
        else:
            report = measure(args)
            print_report(report, args.tflops)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)


if __name__ == '__main__':
    silence_stack_deprecations()
    main()
