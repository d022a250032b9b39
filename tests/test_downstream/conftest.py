"""Fixtures of the downstream chain tests: student checkpoints written the
way a user gets them (a DPAL checkpoint -> extract_student.py)."""
import pytest
from mmdpal_testing import make_student

# the real student of configs/downstream: ViT-Ti/16 pretrained at 256x128
VIT_TI = dict(
    embed_dims=192, num_layers=12, num_heads=6, feedforward_channels=768)
# another architecture: ViT-S/16 (384 dims), the paper's bigger student
VIT_S = dict(
    embed_dims=384, num_layers=12, num_heads=6, feedforward_channels=1536)


@pytest.fixture(scope='session')
def tiny_student(tmp_path_factory):
    """(path, state dict) of the 32-dim student of the tiny test configs."""
    return make_student(str(tmp_path_factory.mktemp('tiny_student')))


@pytest.fixture(scope='session')
def vit_ti_student(tmp_path_factory):
    """(path, state dict) of a ViT-Ti/16 student pretrained at 256x128."""
    return make_student(
        str(tmp_path_factory.mktemp('vit_ti_student')),
        arch=VIT_TI,
        img_size=(256, 128))


@pytest.fixture(scope='session')
def vit_s_student(tmp_path_factory):
    """(path, state dict) of a ViT-S/16 student: wrong for the configs."""
    return make_student(
        str(tmp_path_factory.mktemp('vit_s_student')),
        arch=VIT_S,
        img_size=(256, 128))
