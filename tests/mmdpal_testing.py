"""Helpers shared by mmdpal's tests (a unique module name: pytest imports
every conftest.py as ``conftest``)."""
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHARED = osp.abspath(osp.join(REPO, '..', 'shared'))
TINY_CONFIG = osp.join(REPO, 'tests', 'data', 'tiny_dpal.py')
# must match tests/data/tiny_dpal.py
TINY_TEACHER_ARCH = dict(
    embed_dims=48, num_layers=2, num_heads=3, feedforward_channels=96)


def write_person_images(folder, num, size=(96, 48), seed=0):
    """Write ``num`` JPEGs of a person-like figure (head, torso, legs) at a
    random place and colour on a textured background; returns the paths."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    H, W = size
    paths = []
    for i in range(num):
        img = rng.integers(60, 200, (H, W, 3), dtype=np.uint8)
        img = cv2.GaussianBlur(img, (7, 7), 0)
        cx = int(rng.integers(W // 3, 2 * W // 3))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.circle(img, (cx, H // 6), max(H // 14, 2), colour, -1)
        cv2.rectangle(img, (cx - W // 6, H // 4), (cx + W // 6, 3 * H // 5),
                      colour, -1)
        cv2.rectangle(img, (cx - W // 8, 3 * H // 5), (cx + W // 8, H - 2),
                      tuple(255 - c for c in colour), -1)
        path = osp.join(folder, f'{i:04d}.jpg')
        cv2.imwrite(path, img)
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
        arch=TINY_TEACHER_ARCH, img_size=(64, 32), patch_size=8,
        out_type='raw')
    torch.save(vit.state_dict(), path)
    return path


def tiny_cfg_options(data_root):
    return [
        f'train_dataloader.dataset.data_root={data_root}',
        f'model.teacher.checkpoint={osp.join(data_root, "teacher.pth")}',
        'train_dataloader.dataset.pipeline.2.background_dir='
        f'{osp.join(data_root, "backgrounds")}',
    ]


def run_tool(args, timeout=600, **kwargs):
    """Run a tool of this repo with the current python; return the result."""
    return subprocess.run([sys.executable, *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout,
                          **kwargs)
