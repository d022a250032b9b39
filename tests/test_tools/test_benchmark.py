"""tools/analysis_tools/benchmark_pretrain.py on the tiny config: what it
reports (no timing asserts: only the structure and the counted values)."""
import json
import os.path as osp
import shutil

import pytest
from mmdpal_testing import REPO, TINY_CONFIG, run_tool

BENCHMARK = 'tools/analysis_tools/benchmark_pretrain.py'
TINY_DATA = [
    '--image-size', '64', '32', '--background-size', '80', '80',
    '--data-samples', '4'
]
STAGES = {'LoadPersonImage', 'MultiView', 'CopyPasteMultiPerson', 'PackInputs'}


def check_ok(result):
    assert result.returncode == 0, result.stdout[-3000:] + \
        result.stderr[-5000:]


@pytest.mark.slow
def test_benchmark_reports_data_train_split_memory_and_flops(tmp_path):
    out = tmp_path / 'report.json'
    result = run_tool([
        BENCHMARK, TINY_CONFIG, *TINY_DATA, '--iters', '1', '--warmup', '1',
        '--device', 'cpu', '--tflops', '100', '--json',
        str(out)
    ])
    check_ok(result)
    report = json.loads(out.read_text())
    assert report['package'] == osp.join(REPO, 'mmdpal')
    assert report['views'] == [[64, 32], [32, 24], [32, 24], [64, 64]]
    data = report['data']
    assert data['samples_per_s'] > 0 and data['wall_samples_per_s'] > 0
    assert data['num_samples'] == 4
    assert set(data['stage_ms']) == STAGES
    train = report['train']
    assert train['batch'] == 4 and train['precision'] == 'fp32'
    assert {'teacher', 'student', 'decoder', 'losses',
            'backward_optimizer'} <= set(train['split_s'])
    assert all(v >= 0 for k, v in train['split_s'].items() if k != 'other')
    assert train['peak_memory_gb'] > 0
    # counted FLOPs: the student, teacher and decoder all do matmuls, and
    # the ceiling is the given TFLOP/s over them
    parts = train['gflops_per_sample_by_part']
    assert parts['student'] > 0 and parts['teacher'] > 0 and \
        parts['decoder'] > 0
    assert max(parts.values()) < train['gflops_per_sample']
    assert train['ceiling_samples_per_s'] == pytest.approx(
        100e3 / train['gflops_per_sample'])
    assert set(train['last_losses']) >= {'loss', 'loss_global'}
    assert 'samples per CPU second' in result.stdout
    assert 'ceiling at 100.0 TFLOP/s' in result.stdout


@pytest.mark.slow
def test_benchmark_compare_runs_both_versions(tmp_path):
    """--compare with the folder of another checkout (a copy of this one):
    each version measured in its own process, with its own package."""
    other = tmp_path / 'other'
    for folder in ('mmdpal', 'configs', 'tests/data'):
        shutil.copytree(
            osp.join(REPO, folder),
            other / folder,
            ignore=shutil.ignore_patterns('__pycache__'))
    out = tmp_path / 'compare.json'
    result = run_tool([
        BENCHMARK, TINY_CONFIG, *TINY_DATA, '--skip-train', '--rounds', '1',
        '--compare',
        str(other), '--json',
        str(out)
    ])
    check_ok(result)
    report = json.loads(out.read_text())
    assert len(report['old']) == len(report['new']) == 1
    assert {r['package'] for r in report['old']} == {str(other / 'mmdpal')}
    assert {r['package'] for r in report['new']} == {osp.join(REPO, 'mmdpal')}
    assert all(r['config'].startswith(str(other)) for r in report['old'])
    assert 'train' not in report['new'][0]
    ratios = report['ratios']
    assert ratios['data samples/s'] > 0
    assert {f'data {s} ms' for s in STAGES} <= set(ratios)
    rounds = [
        line.split(':')[0] for line in result.stdout.splitlines()
        if line.startswith('round ')
    ]
    assert rounds == ['round 1/1, old', 'round 1/1, new']
    assert 'new/old' in result.stdout


def test_benchmark_compare_alternates_the_versions():
    from benchmark_pretrain import run_order
    assert run_order(3) == [('old', 'new'), ('new', 'old'), ('old', 'new')]


def test_benchmark_compare_with_an_unknown_ref_fails_clearly(tmp_path):
    result = run_tool([
        BENCHMARK, TINY_CONFIG, *TINY_DATA, '--skip-train', '--compare',
        'no-such-ref-xyz'
    ])
    assert result.returncode != 0
    assert '--compare no-such-ref-xyz' in result.stderr


def test_student_flops_counted_on_the_authors_1d_position_path(tmp_path):
    """The authors' student path runs the ViT's blocks one by one (no
    backbone forward): its FLOPs are still the student's, the same as the
    grid path's (the position resize is not a counted op)."""
    import torch
    from benchmark_pretrain import module_flops
    from mmdpal_testing import save_tiny_teacher
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from torch.utils.flop_counter import FlopCounterMode

    from mmdpal.registry import MODELS
    init_default_scope('mmdpal')
    g = torch.Generator().manual_seed(0)
    views = [
        torch.randn(2, 3, h, w, generator=g)
        for h, w in [(64, 32), (32, 24), (32, 24), (64, 64)]
    ]
    student = {}
    for path in ('grid', 'sequence_1d'):
        cfg = Config.fromfile(TINY_CONFIG).model
        cfg.teacher.checkpoint = save_tiny_teacher(str(tmp_path / 't.pth'))
        cfg.student_pos_embed_resize = path
        model = MODELS.build(cfg)
        with FlopCounterMode(display=False) as counter:
            model(views, None, mode='loss')
        counts = counter.get_flop_counts()
        assert ('DPALDistiller.backbone' in counts) == (path == 'grid')
        student[path] = module_flops(counts, 'DPALDistiller.backbone')
    assert student['grid'] > 0
    assert student['sequence_1d'] == student['grid']


def test_module_flops_takes_the_outermost_modules_that_ran():
    from benchmark_pretrain import module_flops
    counts = {
        'M.backbone.layers.0': dict(mm=10),
        'M.backbone.layers.0.attn': dict(mm=4),
        'M.backbone.layers.1': dict(mm=10),
        'M.backbone_extra': dict(mm=99),
        'M.teacher': dict(mm=7),
        'M.teacher.vit': dict(mm=7),
    }
    assert module_flops(counts, 'M.backbone') == 20
    assert module_flops(counts, 'M.teacher') == 7
    assert module_flops(counts, 'M.decoder') == 0


def test_the_configs_ema_is_built_and_updated_as_its_hook_does(tmp_path):
    """The official config's EMAHook: the benchmark's step updates the same
    averaged copy (student + decoder; the teacher shared, not copied)."""
    import torch
    from benchmark_pretrain import build_ema
    from mmdpal_testing import OFFICIAL_CONFIG, save_tiny_teacher
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmdpal.registry import MODELS
    init_default_scope('mmdpal')
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.model.teacher.checkpoint = save_tiny_teacher(str(tmp_path / 't.pth'))
    model = MODELS.build(cfg.model)
    assert build_ema(cfg, model) is None  # the paper mode keeps none
    cfg.custom_hooks = Config.fromfile(OFFICIAL_CONFIG).custom_hooks
    ema = build_ema(cfg, model)
    assert ema.module.teacher is model.teacher
    token = model.backbone.cls_token
    for _ in range(2):
        before = ema.module.backbone.cls_token.clone()
        with torch.no_grad():
            token.add_(1.)
        ema.update_parameters(model)
    # the first update copies, the next ones move by the small momentum
    moved = (ema.module.backbone.cls_token - before).abs().max().item()
    assert 0 < moved < 0.01
