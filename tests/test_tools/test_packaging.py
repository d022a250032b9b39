"""What setup.py installs: ``mmdpal/.mim`` where mmengine and mim look, the
``mmdpal::`` scope (mmdpal_scope.py, through ``mmdpal-scope.pth``) and the
``mim.module`` entry point; in the editable install of this checkout and in
a wheel installed into a fresh virtualenv. Every check runs in a fresh
interpreter, in a folder outside this checkout, as another repo's tool
would."""
import json
import os.path as osp
import shutil
import subprocess
import sys
import sysconfig
import types

import pytest
from mmdpal_testing import REPO

import mmdpal_scope

PRETRAIN = 'dpal/vit-ti_path-b_lup1m.py'
COCO = 'downstream/mmpose/td-hm_dpal-vit-ti_8xb64-210e_coco-256x192.py'
# what a fresh interpreter reports about mmdpal's installed layout
REPORT = '''
import importlib.metadata as md, json, os, os.path as osp, sys
from mmengine.utils import get_installed_path
from mmengine.config import Config
from mmengine.config.utils import MODULE2PACKAGE
path = get_installed_path('mmdpal')
cfg = Config.fromfile('child.py', import_custom_modules=False)
eps = [ep.value for ep in md.entry_points(group='mim.module')
       if ep.name == 'mmdpal']
print(json.dumps(dict(
    installed_path=path,
    mim=sorted(os.listdir(osp.join(path, '.mim')))
    if osp.isdir(osp.join(path, '.mim')) else None,
    config=osp.realpath(Config._get_cfg_path('mmdpal::%s', '')[0]),
    train_tool=osp.isfile(osp.join(path, '.mim', 'tools', 'train.py')),
    batch_size=cfg.train_dataloader.batch_size, model=cfg.model.type,
    package=MODULE2PACKAGE['mmdpal'], entry_points=eps,
    imported_by_config='mmdpal' in sys.modules)))
''' % PRETRAIN


def child_config(folder, base=PRETRAIN, **overrides):
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"_base_ = ['mmdpal::{base}']"]
    lines += [f'{k} = {v!r}' for k, v in overrides.items()]
    (folder / 'child.py').write_text('\n'.join(lines) + '\n')
    return folder


def fresh_python(python, code, cwd):
    result = subprocess.run([python, '-W', 'ignore', '-c', code],
                            cwd=cwd,
                            capture_output=True,
                            text=True,
                            timeout=300)
    return result


def report(python, cwd):
    result = fresh_python(python, REPORT, cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_editable_install_resolves_mmdpal_configs(tmp_path):
    """The README's install: ``mmdpal::`` resolves to this checkout's
    configs (through the ``.mim`` links, so edits show at once); the
    config is read without importing mmdpal.

    An editable install keeps its metadata in site-packages, so mmengine's
    ``get_installed_path`` names ``site-packages/mmdpal``, which holds no
    package; mmdpal_scope then reads the ``.mim`` of the folder mmdpal is
    imported from (docs/use_from_other_repos.md).
    """
    child = child_config(tmp_path, train_dataloader=dict(batch_size=8))
    info = report(sys.executable, child)
    if info['mim'] is None:
        assert not osp.exists(info['installed_path'])
    assert info['config'] == osp.join(REPO, 'configs', PRETRAIN)
    assert info['batch_size'] == 8 and info['model'] == 'DPALDistiller'
    assert info['package'] == 'mmdpal'
    assert info['entry_points'] == ['mmdpal']
    assert not info['imported_by_config']
    for name in ('configs', 'tools', 'model-index.yml'):
        assert osp.realpath(osp.join(REPO, 'mmdpal', '.mim', name)) == \
            osp.join(REPO, name)


def test_scope_hook_changes_nothing_else(tmp_path):
    """Before mmengine is imported the hook is one finder; afterwards the
    table differs by ``mmdpal`` only, and other packages' lookups are
    mmengine's own functions."""
    code = '''
import json, sys
hooked = [type(f).__name__ for f in sys.meta_path]
heavy = [m for m in ('mmengine', 'mmdpal', 'torch') if m in sys.modules]
import mmengine.config.utils as utils
print(json.dumps(dict(
    hooked=hooked, heavy=heavy, table=sorted(utils.MODULE2PACKAGE),
    base_path=utils._get_external_cfg_base_path.__module__)))
'''
    with_hook = json.loads(fresh_python(sys.executable, code, tmp_path).stdout)
    without = json.loads(
        fresh_python(
            sys.executable, 'import sys; sys.meta_path[:] = [f for f in '
            "sys.meta_path if type(f).__name__ != 'ScopeFinder']\n" + code,
            tmp_path).stdout)
    assert 'ScopeFinder' in with_hook['hooked'] and with_hook['heavy'] == []
    assert set(with_hook['table']) - set(without['table']) == {'mmdpal'}
    assert set(without['table']) <= set(with_hook['table'])
    assert with_hook['base_path'] == 'mmdpal_scope'
    assert without['base_path'] == 'mmengine.config.utils'


# openmim 0.3.9's package lookup (mim/utils/utils.py), as a stand-in: openmim
# is not part of the set-up (it pins setuptools 60, which torch refuses)
MIM_UTILS = """
import os.path as osp
from pkg_resources import get_distribution


def get_installed_path(package):
    pkg = get_distribution(package)
    return osp.join(pkg.location, package)
"""


def test_mim_finds_the_mim_folder_of_the_editable_install(tmp_path):
    """``mim train / test / run mmdpal`` look in ``get_installed_path``'s
    ``.mim``; with the hook, openmim's lookup lands on the checkout's."""
    (tmp_path / 'mim' / 'utils').mkdir(parents=True)
    (tmp_path / 'mim' / '__init__.py').write_text('')
    (tmp_path / 'mim' / 'utils' /
     '__init__.py').write_text('from .utils import get_installed_path\n')
    (tmp_path / 'mim' / 'utils' / 'utils.py').write_text(MIM_UTILS)
    code = """
import json, os.path as osp
from mim.utils import get_installed_path
import mim.utils.utils as inner
print(json.dumps(dict(
    mmdpal=get_installed_path('mmdpal'),
    inner=inner.get_installed_path('mmdpal'),
    mmpretrain=get_installed_path('mmpretrain'))))
"""
    result = fresh_python(sys.executable, code, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    paths = json.loads(result.stdout.splitlines()[-1])
    assert osp.isfile(osp.join(paths['mmdpal'], '.mim', 'tools',
                               'train.py')), paths
    assert osp.isfile(
        osp.join(paths['mmdpal'], '.mim', 'configs', 'dpal',
                 'vit-ti_path-b_lup1m.py'))
    assert paths['inner'] == paths['mmdpal']
    # other packages keep openmim's answer
    assert osp.basename(paths['mmpretrain']) == 'mmpretrain'
    assert 'site-packages' in paths['mmpretrain']


def test_scope_hook_switches_itself_off():
    """Once mmengine lists the scope itself the hook leaves it alone."""
    lookup = object()
    utils = types.SimpleNamespace(
        MODULE2PACKAGE={'mmdpal': 'mmdpal'},
        _get_external_cfg_path=lookup,
        _get_external_cfg_base_path=lookup)
    mmdpal_scope.patch(utils)
    assert utils._get_external_cfg_path is lookup
    assert utils._get_external_cfg_base_path is lookup


def test_scope_hook_on_another_mmengine_only_adds_the_scope():
    """An mmengine without the two lookup functions: the table entry only
    (the hook never breaks mmengine's import)."""
    utils = types.SimpleNamespace(MODULE2PACKAGE={'mmpose': 'mmpose'})
    mmdpal_scope.patch(utils)
    assert utils.MODULE2PACKAGE == {'mmpose': 'mmpose', 'mmdpal': 'mmdpal'}
    assert vars(utils).keys() == {'MODULE2PACKAGE'}


def test_config_name_typo_names_the_path_and_closest_configs(tmp_path):
    child = child_config(tmp_path, base='dpal/vit-ti_path-b_lup1.py')
    result = fresh_python(
        sys.executable,
        "from mmengine.config import Config; Config.fromfile('child.py')",
        child)
    assert result.returncode == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith('FileNotFoundError: mmdpal::dpal/vit-ti_path-b_'
                            'lup1.py: no config ')
    assert osp.join('.mim', 'configs', 'dpal', 'vit-ti_path-b_lup1.py') \
        in error
    assert 'closest: mmdpal::dpal/vit-ti_path-b_lup1m.py' in error


def build_wheel(out):
    """``pip wheel`` of a copy of the checkout (the build writes build/ and
    *.egg-info next to setup.py; the checkout stays untouched)."""
    src = out / 'src'
    src.mkdir(parents=True)
    keep = ('setup.py', 'README.md', 'LICENSE', 'MANIFEST.in',
            'model-index.yml', 'mmdpal_scope.py', 'mmdpal-scope.pth', 'mmdpal',
            'configs', 'tools', 'requirements')
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '.mim')
    for name in keep:
        path = osp.join(REPO, name)
        if osp.isdir(path):
            shutil.copytree(path, src / name, ignore=ignore)
        elif osp.isfile(path):
            shutil.copy(path, src / name)
    result = subprocess.run([
        sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
        '--no-build-isolation', '--no-index',
        str(src), '-w',
        str(out / 'dist')
    ],
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    wheels = list((out / 'dist').glob('mmdpal-*.whl'))
    assert len(wheels) == 1
    return str(wheels[0])


def venv_seeing_this_environment(venv):
    """A fresh venv that sees the packages of the running interpreter.

    ``--system-site-packages`` would show the *base* interpreter's packages,
    which are not the stack when the tests themselves run in a venv. A
    ``.pth`` file naming this environment's site folders works from both.
    Its folders come after the venv's own site-packages, and their ``.pth``
    files (this checkout's editable install) are not processed.
    """
    subprocess.run(
        [sys.executable, '-m', 'venv', str(venv)], check=True, timeout=300)
    python = str(venv / 'bin' / 'python')
    purelib = subprocess.run([
        python, '-c', 'import sysconfig; '
        'print(sysconfig.get_paths()["purelib"])'
    ],
                             capture_output=True,
                             text=True,
                             check=True).stdout.strip()
    ours = {sysconfig.get_paths()[key] for key in ('purelib', 'platlib')}
    with open(osp.join(purelib, 'this-environment.pth'), 'w') as f:
        f.write('\n'.join(sorted(ours)) + '\n')
    return python


@pytest.mark.slow
def test_wheel_in_a_fresh_virtualenv(tmp_path):
    """``pip install mmdpal-*.whl`` (no network: the venv sees this
    environment's packages) gives copies of the configs and tools in
    ``site-packages/mmdpal/.mim``, the scope hook and the entry point."""
    wheel = build_wheel(tmp_path / 'build')
    python = venv_seeing_this_environment(tmp_path / 'venv')
    result = subprocess.run([
        python, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', wheel
    ],
                            capture_output=True,
                            text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    site = subprocess.run([
        python, '-c', 'import sysconfig; '
        'print(sysconfig.get_paths()["purelib"])'
    ],
                          capture_output=True,
                          text=True).stdout.strip()
    info = report(python, child_config(tmp_path / 'other_repo'))
    assert info['installed_path'] == osp.join(site, 'mmdpal')
    assert info['mim'] == ['configs', 'model-index.yml', 'tools']
    # a copy in the venv, not a link to this checkout
    assert info['config'] == osp.join(site, 'mmdpal', '.mim', 'configs',
                                      PRETRAIN)
    assert info['train_tool'] and info['entry_points'] == ['mmdpal']
    assert osp.isfile(osp.join(site, 'mmdpal-scope.pth'))
    # the downstream configs' relative and cross-repo bases resolve there
    coco = report(
        python,
        child_config(
            tmp_path / 'pose_repo',
            base=COCO,
            train_dataloader=dict(batch_size=8)))
    assert coco['batch_size'] == 8
