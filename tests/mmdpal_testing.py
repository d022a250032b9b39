"""Helpers shared by mmdpal's tests (a unique module name: pytest imports
every conftest.py as ``conftest``): tiny pretraining data and teacher, tiny
DPAL students, downstream fixtures in the real file formats (COCO keypoints
json + jpg, CrowdHuman .odgt + jpg, LIP jpg + png) and runs of the tools."""
import copy
import glob
import json
import math
import os
import os.path as osp
import pickle
import runpy
import subprocess
import sys

import cv2
import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHARED = osp.abspath(osp.join(REPO, '..', 'shared'))
TINY_CONFIG = osp.join(REPO, 'tests', 'data', 'tiny_dpal.py')
# Modules that live next to the scripts that use them (the vtest data tool
# in demo/, the analysis helpers in tools/analysis_tools/, the ONNX reader in
# tools/model_converters/): the scripts import them as siblings, and so do
# the tests, once these folders are on the path.
for _folder in ('demo', 'tools/analysis_tools', 'tools/model_converters'):
    if osp.join(REPO, _folder) not in sys.path:
        sys.path.append(osp.join(REPO, _folder))
# must match tests/data/tiny_dpal.py
TINY_TEACHER_ARCH = dict(
    embed_dims=48, num_layers=2, num_heads=3, feedforward_channels=96)


def write_person_images(folder, num, size=(96, 48), seed=0, mask_folder=None):
    """Write ``num`` JPEGs of a person-like figure (head, torso, legs) at a
    random place and colour on a textured background; returns the paths.
    With ``mask_folder``, the figure's mask (255 on it) goes there as a PNG
    of the same name."""
    os.makedirs(folder, exist_ok=True)
    if mask_folder:
        os.makedirs(mask_folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    H, W = size
    paths = []
    for i in range(num):
        img = rng.integers(60, 200, (H, W, 3), dtype=np.uint8)
        img = cv2.GaussianBlur(img, (7, 7), 0)
        mask = np.zeros((H, W), np.uint8)
        cx = int(rng.integers(W // 3, 2 * W // 3))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        for canvas, head, torso, legs in (
            (img, colour, colour, tuple(255 - c for c in colour)),
            (mask, 255, 255, 255),
        ):
            cv2.circle(canvas, (cx, H // 6), max(H // 14, 2), head, -1)
            cv2.rectangle(canvas, (cx - W // 6, H // 4),
                          (cx + W // 6, 3 * H // 5), torso, -1)
            cv2.rectangle(canvas, (cx - W // 8, 3 * H // 5),
                          (cx + W // 8, H - 2), legs, -1)
        path = osp.join(folder, f'{i:04d}.jpg')
        cv2.imwrite(path, img)
        if mask_folder:
            cv2.imwrite(osp.join(mask_folder, f'{i:04d}.png'), mask)
        paths.append(path)
    return paths


def write_backgrounds(folder, num=3, size=(80, 80), seed=1):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(num):
        img = cv2.GaussianBlur(
            rng.integers(0, 255, (*size, 3), dtype=np.uint8), (9, 9), 0)
        cv2.imwrite(osp.join(folder, f'bg_{i}.png'), img)
    return folder


def save_tiny_teacher(path, seed=0):
    """A random tiny ViT teacher, saved as a converted (plain) state dict."""
    from mmpretrain.models import VisionTransformer
    torch.manual_seed(seed)
    vit = VisionTransformer(
        arch=TINY_TEACHER_ARCH,
        img_size=(64, 32),
        patch_size=8,
        out_type='raw')
    torch.save(vit.state_dict(), path)
    return path


OFFICIAL_CONFIG = osp.join(REPO, 'configs', 'dpal',
                           'vit-ti_path-b_lup1m_official.py')


def tiny_official_cfg():
    """tests/data/tiny_dpal.py with the model options, optimiser rules and
    hooks of the official config (fp32 on the CPU); head counts fitted to
    the tiny widths: 4 heads in the student's last block (of 32 dims), 8 in
    the decoder's router."""
    from mmengine.config import Config
    cfg = Config.fromfile(TINY_CONFIG)
    official = Config.fromfile(OFFICIAL_CONFIG)
    om = official.model
    cfg.model.relation_tokens = om.relation_tokens
    cfg.model.student_pos_embed_resize = om.student_pos_embed_resize
    cfg.model.backbone.layer_cfgs = [dict(), dict(num_heads=4)]
    for key in ('shape_mask', 'relation', 'pos_embed_resize'):
        cfg.model.teacher[key] = om.teacher[key]
    cfg.model.decoder = dict(
        om.decoder,
        in_dims=32,
        out_dims=48,
        num_heads=dict(om.decoder.num_heads, router=8))
    cfg.custom_hooks = official.custom_hooks
    cfg.optim_wrapper.optimizer.betas = official.optim_wrapper.optimizer.betas
    cfg.optim_wrapper.paramwise_cfg = official.optim_wrapper.paramwise_cfg
    return cfg


def cubic_resize_1d(x, out_len, scale):
    """Cubic convolution (a = -0.75, torch's bicubic kernel) along the first
    axis of ``x`` (L_0, ...), half-pixel centres ``src = (i + 0.5) / scale
    - 0.5``, border indices clamped, written out step by step."""
    a = -0.75

    def kernel(d):
        d = abs(d)
        if d <= 1:
            return (a + 2) * d**3 - (a + 3) * d**2 + 1
        if d < 2:
            return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
        return 0.

    rows = []
    for i in range(out_len):
        src = (i + 0.5) / scale - 0.5
        i0 = math.floor(src)
        t = src - i0
        row = 0
        for k in (-1, 0, 1, 2):
            idx = min(max(i0 + k, 0), x.shape[0] - 1)
            row = row + kernel(t - k) * x[idx]
        rows.append(row)
    return torch.stack(rows)


def tiny_cfg_options(data_root):
    return [
        f'train_dataloader.dataset.data_root={data_root}',
        f'model.teacher.checkpoint={osp.join(data_root, "teacher.pth")}',
        'train_dataloader.dataset.pipeline.2.background_dir='
        f'{osp.join(data_root, "backgrounds")}',
    ]


def run_tool(args, timeout=600, env=None, **kwargs):
    """Run a tool of this repo with the current python, in the repo (2 BLAS
    threads unless ``env`` says otherwise); return the result."""
    env = {
        **os.environ, 'OMP_NUM_THREADS': '2',
        'MKL_NUM_THREADS': '2',
        **(env or {})
    }
    return subprocess.run([sys.executable, *args],
                          cwd=REPO,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=timeout,
                          **kwargs)


# ------------------------------------------------------- downstream ----
TINY_CONFIGS = osp.join(REPO, 'tests', 'test_downstream', 'configs')
EXTRACT_STUDENT = osp.join(REPO, 'tools', 'model_converters',
                           'extract_student.py')
# the student of every tiny config: pretrained on 64x32 crops, patch 16
TINY_ARCH = dict(
    embed_dims=32, num_layers=4, num_heads=2, feedforward_channels=64)
TINY_PRETRAIN_SIZE = (64, 32)


def make_student(folder,
                 arch=TINY_ARCH,
                 img_size=TINY_PRETRAIN_SIZE,
                 seed=0,
                 layer_cfgs=None):
    """Save a random ViT as a DPAL-like checkpoint (backbone + decoder, in a
    runner checkpoint's layout, the config's text in ``meta['cfg']``) and
    extract the student with tools/model_converters/extract_student.py.

    Returns:
        tuple[str, dict]: The student checkpoint and the ViT's state dict.
    """
    from mmpretrain.models import VisionTransformer
    os.makedirs(folder, exist_ok=True)
    torch.manual_seed(seed)
    backbone = dict(
        type='mmpretrain.VisionTransformer',
        arch=dict(arch),
        img_size=tuple(img_size),
        patch_size=16,
        out_type='raw',
        final_norm=True)
    if layer_cfgs is not None:
        backbone['layer_cfgs'] = list(layer_cfgs)
    vit = VisionTransformer(**{
        k: v
        for k, v in backbone.items() if k != 'type'
    })
    state = {f'backbone.{k}': v for k, v in vit.state_dict().items()}
    state['decoder.router.weight'] = torch.zeros(3, arch['embed_dims'])
    dpal = osp.join(folder, 'dpal_epoch_1.pth')
    cfg = f"model = dict(type='DPALDistiller', backbone={backbone!r})\n"
    torch.save(
        dict(state_dict=state, meta=dict(epoch=1, iter=8, cfg=cfg)), dpal)
    student = osp.join(folder, 'student.pth')
    # run the converter script as a user does, in this process (fast)
    argv = sys.argv
    sys.argv = [EXTRACT_STUDENT, dpal, student]
    try:
        runpy.run_path(EXTRACT_STUDENT, run_name='__main__')
    finally:
        sys.argv = argv
    return student, vit.state_dict()


def train_log(work_dir):
    """The text of the newest log file that mmengine wrote in work_dir."""
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.log')))
    assert logs, f'no log in {work_dir}'
    with open(logs[-1]) as f:
        return f.read()


def train_losses(work_dir):
    """The per-iteration ``loss`` values of the newest scalars.json."""
    files = sorted(
        glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    assert files, f'no scalars.json in {work_dir}'
    with open(files[-1]) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r['loss'] for r in records if 'loss' in r]


# ---------------------------------------------------------------- COCO ----
COCO_KEYPOINTS = [
    'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder',
    'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist',
    'left_hip', 'right_hip', 'left_knee', 'right_knee', 'left_ankle',
    'right_ankle'
]
COCO_SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12],
                 [7, 13], [6, 7], [6, 8], [7, 9], [8, 10], [9, 11], [2, 3],
                 [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]
# a standing person in a unit box (x right, y down)
_POSE = np.array([[.5, .08], [.46, .05], [.54, .05], [.42, .07], [.58, .07],
                  [.35, .22], [.65, .22], [.28, .38], [.72, .38], [.25, .52],
                  [.75, .52], [.4, .55], [.6, .55], [.38, .75], [.62, .75],
                  [.37, .95], [.63, .95]])

# CrowdPose's 14 keypoints: COCO's shoulders to ankles, then head top, neck
CROWDPOSE_KEYPOINTS = COCO_KEYPOINTS[5:] + ['top_head', 'neck']
CROWDPOSE_SKELETON = [[13, 14], [14, 1], [14, 2], [1, 3], [3, 5], [2,
                                                                   4], [4, 6],
                      [1, 7], [2, 8], [7, 9], [9, 11], [8, 10], [10, 12]]
_CROWDPOSE_POSE = np.concatenate([_POSE[5:], [[.5, .0], [.5, .16]]])
# COCO-WholeBody: the body's 17, then 6 foot, 68 face, 21 + 21 hand points
WHOLEBODY_PARTS = (('keypoints', 17), ('foot_kpts', 6), ('face_kpts', 68),
                   ('lefthand_kpts', 21), ('righthand_kpts', 21))


def _keypoint_layout(layout, rng):
    """Unit-box keypoints (K, 2), category keypoint names and skeleton of a
    ``layout``: 'coco', 'crowdpose' or 'wholebody' (the body's 17, the
    rest scattered over the box)."""
    if layout == 'coco':
        return _POSE, COCO_KEYPOINTS, COCO_SKELETON
    if layout == 'crowdpose':
        return _CROWDPOSE_POSE, CROWDPOSE_KEYPOINTS, CROWDPOSE_SKELETON
    assert layout == 'wholebody', layout
    extra = rng.uniform(0.1, 0.9, (133 - 17, 2))
    return np.concatenate([_POSE, extra]), COCO_KEYPOINTS, COCO_SKELETON


def write_coco_keypoints(root,
                         name,
                         num_images=2,
                         persons_per_image=2,
                         size=(120, 160),
                         seed=0,
                         layout='coco'):
    """Write ``num_images`` jpgs with stick-figure persons and their COCO
    keypoint annotations (``annotations/{name}.json``, images in
    ``{name}/``). ``layout='crowdpose'`` writes CrowdPose's format (14
    keypoints, a ``crowdIndex`` per image, as mmpose's CrowdPose json);
    ``'wholebody'`` COCO-WholeBody's (133 points in the ``keypoints``,
    ``foot_kpts``, ``face_kpts``, ``lefthand_kpts`` and ``righthand_kpts``
    fields, each part with its box and ``valid`` flag; the person's box as
    its polygon).

    Returns:
        dict: ``ann_file`` (absolute), ``img_prefix`` (relative to root)
        and ``num_instances``.
    """
    rng = np.random.default_rng(seed)
    pose, names, skeleton = _keypoint_layout(layout, rng)
    num_kpts = len(pose)
    H, W = size
    os.makedirs(osp.join(root, name), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        img = cv2.GaussianBlur(
            rng.integers(40, 200, (H, W, 3), dtype=np.uint8), (5, 5), 0)
        file_name = f'{seed:02d}{i:04d}.jpg'
        img_id = seed * 1000 + i + 1
        for p in range(persons_per_image):
            bw, bh = W / persons_per_image * 0.8, H * 0.8
            x0 = W / persons_per_image * p + rng.uniform(0, 0.15 * bw)
            y0 = rng.uniform(0, 0.15 * bh)
            kpts = pose * [bw, bh] + [x0, y0]
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            for a, b in skeleton:
                cv2.line(img, tuple(int(v) for v in kpts[a - 1]),
                         tuple(int(v) for v in kpts[b - 1]), colour, 3)
            keypoints = np.concatenate([kpts, np.full((num_kpts, 1), 2)],
                                       axis=1)
            flat = [round(float(v), 2) for v in keypoints.reshape(-1)]
            box = [float(x0), float(y0), float(bw), float(bh)]
            ann = dict(
                id=img_id * 10 + p,
                image_id=img_id,
                category_id=1,
                iscrowd=0,
                bbox=box,
                area=float(bw * bh),
                num_keypoints=num_kpts,
                keypoints=flat)
            if layout == 'wholebody':
                start = 0
                for part, n in WHOLEBODY_PARTS:
                    ann[part] = flat[3 * start:3 * (start + n)]
                    start += n
                ann['num_keypoints'] = 17
                x1, y1 = x0 + bw, y0 + bh
                ann['segmentation'] = [[
                    float(v) for v in (x0, y0, x1, y0, x1, y1, x0, y1)
                ]]
                for part in ('face', 'lefthand', 'righthand', 'foot'):
                    ann[f'{part}_valid'] = True
                    ann[f'{part}_box'] = box
            annotations.append(ann)
        cv2.imwrite(osp.join(root, name, file_name), img)
        image = dict(id=img_id, file_name=file_name, width=W, height=H)
        if layout == 'crowdpose':
            image['crowdIndex'] = round(float(rng.uniform(0, 1)), 2)
        images.append(image)
    categories = [
        dict(
            id=1,
            name='person',
            supercategory='person',
            keypoints=names,
            skeleton=skeleton)
    ]
    ann_file = osp.join(root, 'annotations', f'{name}.json')
    with open(ann_file, 'w') as f:
        json.dump(
            dict(
                images=images, annotations=annotations, categories=categories),
            f)
    return dict(
        ann_file=ann_file,
        img_prefix=f'{name}/',
        num_instances=len(annotations))


def mmpose_data_options(data_root,
                        train_ann,
                        val_ann,
                        img_prefix,
                        val_img_prefix=None):
    """--cfg-options pointing a tiny mmpose config at a COCO-style folder."""
    val_img_prefix = img_prefix if val_img_prefix is None else val_img_prefix
    opts = [
        f'train_dataloader.dataset.data_root={data_root}',
        f'train_dataloader.dataset.ann_file={train_ann}',
        f'train_dataloader.dataset.data_prefix.img={img_prefix}'
    ]
    for split in ('val', 'test'):
        dataset = f'{split}_dataloader.dataset'
        opts += [
            f'{dataset}.data_root={data_root}',
            f'{dataset}.ann_file={val_ann}',
            f'{dataset}.data_prefix.img={val_img_prefix}',
            f'{split}_evaluator.ann_file={val_ann}'
        ]
    return opts


# ----------------------------------------------------------- CrowdHuman ----
def write_crowdhuman(root, split, num_images=2, size=(128, 192), seed=0):
    """Write ``Images/*.jpg`` and ``annotation_{split}.odgt`` in CrowdHuman's
    format: per person a full, visible and head box (x, y, w, h); one
    ignored 'mask' region per image.

    Returns:
        tuple[str, list[dict]]: The .odgt path and its records.
    """
    rng = np.random.default_rng(seed)
    H, W = size
    os.makedirs(osp.join(root, 'Images'), exist_ok=True)
    records = []
    for i in range(num_images):
        img = cv2.GaussianBlur(
            rng.integers(40, 200, (H, W, 3), dtype=np.uint8), (5, 5), 0)
        boxes = []
        for p in range(3):
            w, h = int(rng.integers(30, 45)), int(rng.integers(70, 100))
            x, y = 10 + 60 * p + int(rng.integers(0, 10)), int(
                rng.integers(5, H - h - 5))
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            cv2.rectangle(img, (x, y + h // 5), (x + w, y + h), colour, -1)
            cv2.circle(img, (x + w // 2, y + h // 10), h // 10, colour, -1)
            boxes.append(
                dict(
                    tag='person',
                    fbox=[x, y, w, h],
                    vbox=[x, y, w, h - 10],
                    hbox=[x + w // 4, y, w // 2, h // 5],
                    head_attr=dict(ignore=0, occ=0, unsure=0),
                    extra=dict(box_id=p, occ=0)))
        region = [W - 12, 2, 10, 10]
        boxes.append(
            dict(
                tag='mask',
                fbox=region,
                vbox=region,
                hbox=region,
                head_attr={},
                extra=dict(ignore=1)))
        record_id = f'{split}_{seed}_{i}'
        cv2.imwrite(osp.join(root, 'Images', f'{record_id}.jpg'), img)
        records.append(dict(ID=record_id, gtboxes=boxes))
    ann_file = osp.join(root, f'annotation_{split}.odgt')
    with open(ann_file, 'w') as f:
        f.write('\n'.join(json.dumps(r) for r in records) + '\n')
    return ann_file, records


def mmdet_data_options(data_root, train_ann, val_ann):
    """--cfg-options pointing the tiny CrowdDet config at a folder."""
    opts = [
        f'train_dataloader.dataset.data_root={data_root}',
        f'train_dataloader.dataset.ann_file={train_ann}'
    ]
    for split in ('val', 'test'):
        opts += [
            f'{split}_dataloader.dataset.data_root={data_root}',
            f'{split}_dataloader.dataset.ann_file={val_ann}',
            f'{split}_evaluator.ann_file={val_ann}'
        ]
    return opts


# ------------------------------------------------------------------ LIP ----
# LIP classes drawn on the figure: hair 2, upper clothes 5, pants 9, face 13,
# left/right arm 14/15, left/right leg 16/17, left/right shoe 18/19
_LIP_PARTS = [(2, (.35, .02, .65, .08)), (13, (.38, .08, .62, .18)),
              (5, (.3, .18, .7, .5)), (14, (.15, .2, .3, .5)),
              (15, (.7, .2, .85, .5)), (9, (.3, .5, .7, .62)),
              (16, (.32, .62, .48, .88)), (17, (.52, .62, .68, .88)),
              (18, (.3, .88, .48, .97)), (19, (.52, .88, .7, .97))]


def write_lip(root, split, num_images=2, size=(120, 80), seed=0):
    """Write LIP-layout ``images/{split}/*.jpg`` and
    ``annotations/{split}/*.png`` (uint8 class index per pixel, 0 =
    background) of a person figure at a random place.

    Returns:
        list[str]: The label mask paths.
    """
    rng = np.random.default_rng(seed)
    H, W = size
    img_dir = osp.join(root, 'images', split)
    ann_dir = osp.join(root, 'annotations', split)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    palette = rng.integers(0, 255, (20, 3))
    masks = []
    for i in range(num_images):
        label = np.zeros((H, W), np.uint8)
        ox, oy = rng.integers(0, W // 5), rng.integers(0, H // 8)
        bw, bh = W * 0.75, H * 0.85
        for cls, (x0, y0, x1, y1) in _LIP_PARTS:
            label[int(oy + y0 * bh):int(oy + y1 * bh),
                  int(ox + x0 * bw):int(ox + x1 * bw)] = cls
        img = palette[label].astype(np.uint8)
        img = np.clip(img + rng.normal(0, 8, img.shape), 0,
                      255).astype(np.uint8)
        name = f'{split}_{seed}_{i:04d}'
        cv2.imwrite(osp.join(img_dir, f'{name}.jpg'), img)
        cv2.imwrite(osp.join(ann_dir, f'{name}.png'), label)
        masks.append(osp.join(ann_dir, f'{name}.png'))
    return masks


def mmseg_data_options(data_root):
    """--cfg-options pointing the tiny LIP config at a folder."""
    opts = [
        f'train_dataloader.dataset.data_root={data_root}',
        'train_dataloader.dataset.data_prefix.img_path=images/train',
        'train_dataloader.dataset.data_prefix.seg_map_path='
        'annotations/train'
    ]
    for split in ('val', 'test'):
        opts += [
            f'{split}_dataloader.dataset.data_root={data_root}',
            f'{split}_dataloader.dataset.data_prefix.img_path=images/val',
            f'{split}_dataloader.dataset.data_prefix.seg_map_path='
            'annotations/val'
        ]
    return opts


def train_from_student(config,
                       work,
                       data_options,
                       student,
                       pos_embed_resize=None,
                       checkpoint='epoch_1.pth',
                       cls_token_used=False,
                       unused=None):
    """``tools/train.py CONFIG`` for two iterations from the student, and the
    checks every chain shares: every student tensor loaded (all but the class
    token, logged as such, unless ``cls_token_used``: the ReID and attribute
    models embed with it; all but ``unused`` when given), the position grid
    resized as expected, finite losses, and fine-tuning started from the
    student (two small steps away).

    Returns:
        str: The checkpoint written after the two iterations (``checkpoint``
        in ``work``).
    """
    path, state = student
    result = run_tool([
        'tools/train.py', config, '--work-dir', work, '--cfg-options',
        *data_options, f'model.init_cfg.checkpoint={path}'
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    log = train_log(work)
    if unused is None:
        unused = () if cls_token_used else ('cls_token', )
    assert (f'StrictPretrained: loaded all {len(state) - len(unused)} '
            'tensors of model.backbone') in log
    if unused:
        assert ('unused by the model (as expected): ' + ', '.join(unused)
                in log)
    else:
        assert 'unused by the model' not in log
    if pos_embed_resize is not None:
        assert f'pos_embed: {pos_embed_resize}' in log
    losses = train_losses(work)
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    ckpt = osp.join(work, checkpoint)
    tuned = torch.load(
        ckpt, map_location='cpu', weights_only=True)['state_dict']
    drift = (tuned['backbone.layers.0.attn.qkv.weight'] -
             state['layers.0.attn.qkv.weight']).abs().max().item()
    assert 0 < drift < 1e-2
    return ckpt


def evaluate_checkpoint(config,
                        checkpoint,
                        work,
                        data_options,
                        extra_options=(),
                        tta=False):
    """``tools/test.py CONFIG CHECKPOINT`` (``--tta``: with the config's
    test-time augmentation) on the chain's fixtures; returns the metrics it
    wrote with ``--out``."""
    out = osp.join(work, 'metrics.json')
    result = run_tool([
        'tools/test.py', config, checkpoint, '--work-dir', work, '--out', out,
        *(['--tta'] if tta else []), '--cfg-options', *data_options,
        *extra_options
    ])
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out) as f:
        return json.load(f)


def official_tiny_config(tiny, official, path, copied, fitted):
    """A chain test's shrunk config ``tiny`` with the authors' protocol of
    ``official`` (configs/downstream/*/*_official.py): the keys ``copied``
    (dotted paths) taken from it, then ``fitted`` (dotted keys, as
    ``--cfg-options``) fitting them to the tiny model; written to ``path``
    for tools/train.py and tools/test.py.

    Returns:
        str: ``path``.
    """
    from mmengine.config import Config
    cfg = Config.fromfile(tiny)
    source = Config.fromfile(official)
    for key in copied:
        *parents, last = key.split('.')
        into, src = cfg, source
        for part in parents:
            into, src = into[part], src[part]
        into[last] = copy.deepcopy(src[last])
    cfg.merge_from_dict(fitted)
    cfg.dump(path)
    return path


def build_with_student(config, scope, student_path):
    """The config's model, built in the toolbox's ``scope`` (mmpose, mmdet,
    mmseg) with the student of ``student_path`` loaded by its init_cfg."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope

    import mmdpal  # noqa: F401
    cfg = Config.fromfile(config)
    cfg.model.init_cfg.checkpoint = student_path
    with DefaultScope.overwrite_default_scope(scope):  # no leak to others
        model = MODELS.build(cfg.model)
        model.init_weights()
    return model


# ------------------------------------------------------ ReID, attributes ----
def _identity_colours(num_ids, seed):
    """Distinct upper / lower body colours per identity (index 0 unused)."""
    rng = np.random.default_rng(seed)
    return rng.integers(20, 235, (num_ids + 1, 2, 3))


def _draw_pedestrian(rng, colours, size):
    """A pedestrian crop (head, torso, legs) in the given colours, at a
    random offset on a textured background."""
    H, W = size
    img = cv2.GaussianBlur(
        rng.integers(60, 200, (H, W, 3), dtype=np.uint8), (7, 7), 0)
    cx = W // 2 + int(rng.integers(-W // 10, W // 10 + 1))
    upper, lower = (tuple(int(c) for c in col) for col in colours)
    cv2.circle(img, (cx, H // 8), max(H // 14, 2), (90, 110, 160), -1)
    cv2.rectangle(img, (cx - W // 4, H // 5), (cx + W // 4, 11 * H // 20),
                  upper, -1)
    cv2.rectangle(img, (cx - W // 5, 11 * H // 20), (cx + W // 5, H - 3),
                  lower, -1)
    return img


def write_market1501(root,
                     num_train_ids=4,
                     num_test_ids=3,
                     images_per_camera=2,
                     num_cameras=2,
                     size=(64, 32),
                     seed=0):
    """Write a Market-1501 folder: ``bounding_box_train/``, ``query/`` and
    ``bounding_box_test/`` of ``PID_cCsS_FRAME_BOX.jpg`` crops, each identity
    drawn in its own colours; per test identity one query image from camera
    1 and the rest in the gallery; the gallery also holds a junk image
    (``-1``), a distractor (``0000``) and a ``Thumbs.db``.

    Returns:
        dict: ``train``, ``query``, ``gallery``: lists of (file name, person
        id, camera) as the standard protocol keeps them (no junk).
    """
    rng = np.random.default_rng(seed)
    colours = _identity_colours(num_train_ids + num_test_ids, seed)
    written = dict(train=[], query=[], gallery=[])

    def put(folder, pid, cam, frame, key, colour_id=None):
        name = f'{pid:04d}_c{cam}s1_{frame:06d}_00.jpg' if pid >= 0 else \
            f'-1_c{cam}s1_{frame:06d}_00.jpg'
        os.makedirs(osp.join(root, folder), exist_ok=True)
        img = _draw_pedestrian(
            rng, colours[pid if colour_id is None else colour_id], size)
        cv2.imwrite(osp.join(root, folder, name), img)
        if key:
            written[key].append((name, pid, cam))

    for pid in range(1, num_train_ids + 1):
        for cam in range(1, num_cameras + 1):
            for k in range(images_per_camera):
                put('bounding_box_train', pid, cam, 100 * cam + k, 'train')
    for offset in range(1, num_test_ids + 1):
        pid = num_train_ids + offset
        put('query', pid, 1, 1, 'query')
        for cam in range(1, num_cameras + 1):
            for k in range(images_per_camera):
                put('bounding_box_test', pid, cam, 100 * cam + k + 2,
                    'gallery')
    put('bounding_box_test', -1, 1, 7, None, colour_id=1)
    put('bounding_box_test', 0, 2, 8, 'gallery', colour_id=0)
    with open(osp.join(root, 'bounding_box_test', 'Thumbs.db'), 'wb') as f:
        f.write(b'\0' * 8)
    return written


def write_msmt17(root,
                 num_train_ids=3,
                 num_test_ids=2,
                 images_per_id=4,
                 size=(64, 32),
                 seed=0):
    """Write an MSMT17_V1 folder: ``train/``, ``test/`` (one sub-folder per
    identity of ``PID_INDEX_CAMERA_TIME_FRAME_BOX.jpg`` crops) and
    ``list_{train,val,query,gallery}.txt`` (``PID/FILE PID`` lines; the
    last training image of each identity is in ``list_val.txt``; the first
    test image of each identity is a query).

    Returns:
        dict: the lines (path, pid, camera) of each list.
    """
    rng = np.random.default_rng(seed)
    colours = _identity_colours(num_train_ids + num_test_ids, seed)
    lists = dict(train=[], val=[], query=[], gallery=[])
    parts = [('train', range(num_train_ids)), ('test', range(num_test_ids))]
    for part, pids in parts:
        for pid in pids:
            colour_id = pid + 1 if part == 'train' else num_train_ids + pid + 1
            for k in range(images_per_id):
                cam = 1 + k % 3
                rel = f'{pid:04d}/{pid:04d}_{k:03d}_{cam:02d}_0303morning_' \
                      f'{k:04d}_0.jpg'
                os.makedirs(osp.join(root, part, f'{pid:04d}'), exist_ok=True)
                cv2.imwrite(
                    osp.join(root, part, rel),
                    _draw_pedestrian(rng, colours[colour_id], size))
                if part == 'train':
                    key = 'val' if k == images_per_id - 1 else 'train'
                else:
                    key = 'query' if k == 0 else 'gallery'
                lists[key].append((rel, pid, cam))
    for key, lines in lists.items():
        with open(osp.join(root, f'list_{key}.txt'), 'w') as f:
            f.write(''.join(f'{rel} {pid}\n' for rel, pid, _ in lines))
    return lists


PA100K_ATTRIBUTES = [
    'Female', 'AgeOver60', 'Age18-60', 'AgeLess18', 'Front', 'Side', 'Back',
    'Hat', 'Glasses', 'HandBag', 'ShoulderBag', 'Backpack',
    'HoldObjectsInFront', 'ShortSleeve', 'LongSleeve', 'UpperStride',
    'UpperLogo', 'UpperPlaid', 'UpperSplice', 'LowerStripe', 'LowerPattern',
    'LongCoat', 'Trousers', 'Shorts', 'Skirt&Dress', 'boots'
]


def _mat_cell(strings):
    """An Nx1 MATLAB cell array of strings, as savemat writes it."""
    cell = np.empty((len(strings), 1), dtype=object)
    for i, string in enumerate(strings):
        cell[i, 0] = string
    return cell


def write_pa100k(root, num_images=dict(train=6, val=2, test=4), seed=0):
    """Write PA-100K's ``annotation.mat`` (with scipy, in the released
    layout: ``attributes`` 26x1 cell, ``{split}_images_name`` Nx1 cell,
    ``{split}_label`` Nx26 0/1) and its images in ``data/``. The first
    attributes are drawn: 'Female' (index 0) as a red torso, 'Hat' (7) as
    a black band on the head.

    Returns:
        dict: per split, (image names, (N, 26) uint8 labels).
    """
    from scipy.io import savemat
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'data'), exist_ok=True)
    ann = dict(attributes=_mat_cell(PA100K_ATTRIBUTES))
    written, index = {}, 0
    for split, num in num_images.items():
        labels = (rng.random((num, len(PA100K_ATTRIBUTES)))
                  < 0.3).astype(np.uint8)
        labels[:, 0] = np.arange(num) % 2  # both classes in every split
        names = []
        for i in range(num):
            index += 1
            name = f'{index:06d}.jpg'
            upper = (40, 40, 220) if labels[i, 0] else (200, 120, 40)
            img = _draw_pedestrian(rng, [upper, (60, 60, 60)], (64, 32))
            if labels[i, 7]:
                cv2.rectangle(img, (10, 2), (22, 6), (0, 0, 0), -1)
            cv2.imwrite(osp.join(root, 'data', name), img)
            names.append(name)
        ann[f'{split}_images_name'] = _mat_cell(names)
        ann[f'{split}_label'] = labels
        written[split] = (names, labels)
    savemat(osp.join(root, 'annotation.mat'), ann)
    return written


# PETA's 105 attribute names, in the order of its files: the 35 evaluated
# ones (PETA_EVAL_ATTRIBUTES gives their group order), 44 colours, 26 extra.
PETA_ATTRIBUTES = [
    'personalLess30', 'personalLess45', 'personalLess60', 'personalLarger60',
    'carryingBackpack', 'carryingOther', 'lowerBodyCasual', 'upperBodyCasual',
    'lowerBodyFormal', 'upperBodyFormal', 'accessoryHat', 'upperBodyJacket',
    'lowerBodyJeans', 'footwearLeatherShoes', 'upperBodyLogo', 'hairLong',
    'personalMale', 'carryingMessengerBag', 'accessoryMuffler',
    'accessoryNothing', 'carryingNothing', 'upperBodyPlaid',
    'carryingPlasticBags', 'footwearSandals', 'footwearShoes',
    'lowerBodyShorts', 'upperBodyShortSleeve', 'lowerBodyShortSkirt',
    'footwearSneaker', 'upperBodyThinStripes', 'accessorySunglasses',
    'lowerBodyTrousers', 'upperBodyTshirt', 'upperBodyOther', 'upperBodyVNeck'
] + [
    part + colour for part in ('upperBody', 'lowerBody', 'hair', 'footwear')
    for colour in ('Black', 'Blue', 'Brown', 'Green', 'Grey', 'Orange', 'Pink',
                   'Purple', 'Red', 'White', 'Yellow')
] + [
    'accessoryHeadphone', 'personalLess15', 'carryingBabyBuggy', 'hairBald',
    'footwearBoots', 'lowerBodyCapri', 'carryingShoppingTro',
    'carryingUmbrella', 'personalFemale', 'carryingFolder',
    'accessoryHairBand', 'lowerBodyHotPants', 'accessoryKerchief',
    'lowerBodyLongSkirt', 'upperBodyLongSleeve', 'lowerBodyPlaid',
    'lowerBodyThinStripes', 'carryingLuggageCase', 'upperBodyNoSleeve',
    'hairShort', 'footwearStocking', 'upperBodySuit', 'carryingSuitcase',
    'lowerBodySuits', 'upperBodySweater', 'upperBodyThickStripes'
]

# The PETA-zs split that write_peta writes (0-based image indices).
PETA_ZS_SPLIT = dict(
    train=[0, 1, 3, 4, 5, 6], val=[7, 8], test=[2, 9, 10, 11, 12, 13, 14, 15])


def pickle_as_easydict(path, fields, protocol=pickle.DEFAULT_PROTOCOL):
    """Pickle ``fields`` as an ``easydict.EasyDict`` (nested dicts too), as
    Jia et al.'s format_peta.py does, with a stand-in ``easydict`` module
    that behaves like the real one (items are also attributes); the module
    leaves ``sys.modules`` afterwards, so readers must do without it."""
    import types
    assert 'easydict' not in sys.modules

    class EasyDict(dict):

        def __init__(self, d=None, **kwargs):
            for key, value in dict(d or {}, **kwargs).items():
                setattr(self, key, value)

        def __setattr__(self, name, value):
            if isinstance(value, dict) and not isinstance(value, EasyDict):
                value = EasyDict(value)
            super().__setattr__(name, value)
            super().__setitem__(name, value)

        __setitem__ = __setattr__

    EasyDict.__module__, EasyDict.__qualname__ = 'easydict', 'EasyDict'
    module = types.ModuleType('easydict')
    module.EasyDict = EasyDict
    sys.modules['easydict'] = module
    try:
        with open(path, 'wb') as f:
            pickle.dump(EasyDict(fields), f, protocol=protocol)
    finally:
        del sys.modules['easydict']


def write_peta(root, num_images=16, seed=0):
    """Write a PETA folder in both released annotation formats:

    - ``PETA.mat`` (with scipy): the 1x1 struct ``peta`` whose fields are
      ``data`` (N x (4 + 105): image number, three id columns, then the 105
      labels), ``attribute`` (105x1 cell of names), ``selected_attribute``
      (the 35 evaluated, 1-based) and ``partition_attribute`` (5x1 cell of
      1x1 structs with ``train`` / ``val`` / ``test``: Kx1 1-based
      indices); readers take the fields by position, as Jia et al.'s code
      does, so their names are not checked;
    - ``dataset_zs_run0.pkl``: a pickled ``easydict.EasyDict`` as Jia et
      al.'s code writes it (image_name, label (N x 105), attr_name,
      label_idx.eval / color / extra, partition.train / val / trainval /
      test of 0-based indices = :data:`PETA_ZS_SPLIT`, weights, root);
    - ``images/00001.png`` ... (64x32).

    Labels are 0/1 with a few 2s (unknown, read as 0). Image ``00003.png``
    (index 2, the first PETA-zs test image) is labelled by hand:
    'accessoryHat' (10) and 'personalMale' (16) are 1, 'upperBodyBlack'
    (35, a colour, not evaluated) is 1, 'personalLess30' (0) is 2, all
    else 0. 'personalMale' is drawn as a blue torso, 'accessoryHat' as a
    black band on the head.

    Returns:
        dict: ``labels`` ((N, 105) uint8 as written) and ``partitions``
        (PETA.mat's 5 partitions, dicts of 0-based ``train`` / ``val`` /
        ``test`` arrays).
    """
    from scipy.io import savemat
    rng = np.random.default_rng(seed)
    num_attributes = len(PETA_ATTRIBUTES)
    labels = (rng.random((num_images, num_attributes)) < 0.3).astype(np.uint8)
    labels[rng.random(labels.shape) < 0.05] = 2
    labels[:, 16] = np.arange(num_images) % 2  # both classes of 'Male'
    labels[2] = 0
    labels[2, [10, 16, 35]] = 1
    labels[2, 0] = 2
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    for i, label in enumerate(labels):
        upper = (200, 60, 40) if label[16] == 1 else (40, 120, 200)
        img = _draw_pedestrian(rng, [upper, (60, 60, 60)], (64, 32))
        if label[10] == 1:
            cv2.rectangle(img, (10, 2), (22, 6), (0, 0, 0), -1)
        cv2.imwrite(osp.join(root, 'images', f'{i + 1:05d}.png'), img)

    eval_idx = [
        10, 18, 19, 30, 15, 7, 9, 11, 14, 21, 26, 29, 32, 33, 34, 6, 8, 12, 25,
        27, 31, 13, 23, 24, 28, 4, 5, 17, 20, 22, 0, 1, 2, 3, 16
    ]
    partitions = []
    cell = np.empty((5, 1), dtype=object)
    for k in range(5):
        order = rng.permutation(num_images)
        part = dict(train=order[:6], val=order[6:8], test=order[8:])
        partitions.append(part)
        struct = np.empty((1, 1),
                          dtype=[('train', object), ('val', object),
                                 ('test', object)])
        struct[0, 0] = tuple(
            (part[s] + 1.0).reshape(-1, 1) for s in ('train', 'val', 'test'))
        cell[k, 0] = struct
    data = np.zeros((num_images, 4 + num_attributes))
    data[:, 0] = np.arange(1, num_images + 1)
    data[:, 1:4] = rng.integers(1, 100, (num_images, 3))
    data[:, 4:] = labels
    peta = np.empty((1, 1),
                    dtype=[('data', object), ('attribute', object),
                           ('selected_attribute', object),
                           ('partition_attribute', object)])
    peta[0, 0] = (data, _mat_cell(PETA_ATTRIBUTES),
                  np.array(eval_idx, dtype=float).reshape(-1, 1) + 1, cell)
    savemat(osp.join(root, 'PETA.mat'), dict(peta=peta))

    split = {k: np.array(v) for k, v in PETA_ZS_SPLIT.items()}
    split['trainval'] = np.concatenate([split['train'], split['val']])
    pickle_as_easydict(
        osp.join(root, 'dataset_zs_run0.pkl'),
        dict(
            description='peta',
            reorder='group_order',
            root='/datasets/attribute/PETA/images',
            image_name=[f'{i + 1:05}.png' for i in range(num_images)],
            label=labels,
            attr_name=PETA_ATTRIBUTES,
            label_idx=dict(
                eval=eval_idx,
                color=list(range(35, 79)),
                extra=range(79, num_attributes)),
            partition=split,
            weight_train=[labels[split['train']].mean(0).astype(np.float32)],
            weight_trainval=[
                labels[split['trainval']].mean(0).astype(np.float32)
            ]))
    return dict(labels=labels, partitions=partitions)


def outputs_per_image(config, scope, student_path, checkpoint, dataset,
                      forward):
    """Run a fine-tuned checkpoint of ``config`` image by image over
    ``dataset`` (its test pipeline and data preprocessor), as a check of what
    tools/test.py reported: ``forward(model, inputs)`` of each image."""
    from mmengine.config import Config
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(config)
    model = build_with_student(config, scope, student_path)
    model.load_state_dict(
        torch.load(checkpoint, map_location='cpu',
                   weights_only=True)['state_dict'])
    model.eval()
    with DefaultScope.overwrite_default_scope(scope):
        pipeline = Compose(cfg.test_pipeline)
    outputs = []
    with torch.no_grad():
        for i in range(len(dataset)):
            data = model.data_preprocessor(
                pseudo_collate([pipeline(dataset.get_data_info(i))]))
            outputs.append(forward(model, data['inputs']))
    return outputs
