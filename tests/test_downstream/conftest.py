"""Fixtures of the downstream chain tests: student checkpoints written the
way a user gets them (a DPAL checkpoint -> extract_student.py)."""
import pytest
from mmdpal_testing import make_student

# the real student of configs/downstream: ViT-Ti/16 pretrained at 256x128
VIT_TI = dict(
    embed_dims=192, num_layers=12, num_heads=6, feedforward_channels=768)
# the official student (the authors' ViT-Ti): 12 heads in the last block,
# and the tiny test configs' official student (4 in the last of 4 blocks);
# their checkpoints record the heads, which StrictPretrained checks
OFFICIAL_HEADS = [dict()] * 11 + [dict(num_heads=12)]
TINY_OFFICIAL_HEADS = [dict()] * 3 + [dict(num_heads=4)]
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
def official_tiny_student(tmp_path_factory):
    """(path, state dict) of the tiny official configs' student."""
    return make_student(
        str(tmp_path_factory.mktemp('official_tiny_student')),
        layer_cfgs=TINY_OFFICIAL_HEADS)


@pytest.fixture(scope='session')
def official_vit_ti_student(tmp_path_factory):
    """(path, state dict) of the official ViT-Ti/16 student (the authors'
    heads), pretrained at 256x128."""
    return make_student(
        str(tmp_path_factory.mktemp('official_vit_ti_student')),
        arch=VIT_TI,
        img_size=(256, 128),
        layer_cfgs=OFFICIAL_HEADS)


@pytest.fixture(scope='session')
def vit_s_student(tmp_path_factory):
    """(path, state dict) of a ViT-S/16 student: wrong for the configs."""
    return make_student(
        str(tmp_path_factory.mktemp('vit_s_student')),
        arch=VIT_S,
        img_size=(256, 128))


@pytest.fixture
def student_for(request):
    """``student_for(config)``: the (path, state dict) of the ViT-Ti/16
    student a config expects: the official one (the authors' heads) for an
    ``*_official.py`` config, ours for the others. ``tiny=True`` gives the
    tiny test configs' students instead."""

    def student(config, tiny=False):
        official = str(config).endswith('_official.py')
        name = ('official_' if official else '') + ('tiny_student' if tiny else
                                                    'vit_ti_student')
        return request.getfixturevalue(name)

    return student
