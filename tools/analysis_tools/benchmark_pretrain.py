"""Measure DPAL pretraining speed for a config on synthetic inputs.

    python tools/analysis_tools/benchmark_pretrain.py \
        configs/dpal/vit-ti_path-b_lup1m.py [--batch-size 256] [--iters 20]
        [--device cuda] [--teacher-checkpoint PATH]

Runs full training steps (data preprocessor, teacher, student, decoder,
losses, backward, optimizer step) of the config's model on random uint8
views of the config's sizes, and reports samples/s, seconds per iteration
and peak memory. On a GPU it uses the config's optimizer wrapper (bf16 AMP
for the Table 6 config); on the CPU the same optimizer in fp32. The teacher
gets random weights unless --teacher-checkpoint is given: speed does not
depend on the values. Timing syncs the device only at the ends of the timed
block, so a hidden per-step host sync would show up as lost throughput.
"""
import argparse
import os.path as osp
import resource
import tempfile
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

import mmdpal  # noqa: F401
from mmdpal.registry import MODELS


def view_sizes(cfg):
    """(h, w) of every view the config's pipeline makes, in order."""
    sizes = []
    for t in cfg.train_dataloader.dataset.pipeline:
        if t['type'] == 'MultiView':
            for n, group in zip(t['num_views'], t['transforms']):
                crop = next(x for x in group if 'scale' in x)
                sizes += [tuple(crop['scale'])] * n
        elif t['type'] == 'CopyPasteMultiPerson':
            sizes.append(tuple(t['size']))
    return sizes


def random_teacher_checkpoint(cfg, folder):
    teacher_vit = MODELS.build(dict(cfg.model.teacher.backbone))
    path = osp.join(folder, 'random_teacher.pth')
    torch.save(teacher_vit.state_dict(), path)
    return path


def peak_memory_gb(device):
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=None,
        help='per-device batch (default: the config\'s)')
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
        help='torch CPU threads (default: torch\'s)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, as in train.py')
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdpal'))
    batch = args.batch_size or cfg.train_dataloader.batch_size
    sizes = view_sizes(cfg)

    with tempfile.TemporaryDirectory() as tmp:
        if args.teacher_checkpoint:
            cfg.model.teacher.checkpoint = args.teacher_checkpoint
        else:
            cfg.model.teacher.checkpoint = random_teacher_checkpoint(cfg, tmp)
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

    n_student = sum(p.numel() for p in model.backbone.parameters())
    n_decoder = sum(p.numel() for p in model.decoder.parameters())
    n_teacher = sum(p.numel() for p in model.teacher.parameters())
    print(f'config: {args.config}')
    where = (
        torch.cuda.get_device_name(device)
        if device.type == 'cuda' else f'{torch.get_num_threads()} threads')
    print(f'device: {device} ({where}), '
          f'precision: {precision}, batch: {batch}, views: {sizes}')
    print(f'params: student {n_student / 1e6:.2f}M, decoder '
          f'{n_decoder / 1e6:.2f}M, teacher {n_teacher / 1e6:.2f}M (frozen)')

    def step():
        return model.train_step(data, optim_wrapper)

    for _ in range(args.warmup):
        step()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.iters):
        log_vars = step()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / args.iters

    # the teacher alone: what share of a step is the frozen forward
    views = model.data_preprocessor(data, True)['inputs']
    grids = [model.student_tokens(v)[2] for v in (views[0], views[-1])]
    t0 = time.perf_counter()
    with optim_wrapper.optim_context(model):  # same precision as the step
        for _ in range(args.iters):
            model.teacher(views[0], grids[0])
            model.teacher(views[-1], grids[1])
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    teacher_seconds = (time.perf_counter() - t0) / args.iters

    losses = {k: round(float(v.detach()), 4) for k, v in log_vars.items()}
    print(f'samples/s: {batch / seconds:.1f}')
    print(f's/iter: {seconds:.3f} (teacher forward: {teacher_seconds:.3f})')
    print(f'peak memory: {peak_memory_gb(device):.2f} GB'
          f'{" (process max RSS)" if device.type != "cuda" else ""}')
    print(f'last losses: {losses}')


if __name__ == '__main__':
    main()
