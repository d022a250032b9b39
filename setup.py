import os
import os.path as osp
import shutil
from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.editable_wheel import editable_wheel

HERE = osp.dirname(osp.abspath(__file__))
# What mmengine's `mmdpal::` lookup and mim read from `mmdpal/.mim/`.
MIM_FILES = ('configs', 'tools', 'model-index.yml')
# Makes `mmdpal::` resolvable in mmengine (mmdpal_scope.py says how).
SCOPE_PTH = 'mmdpal-scope.pth'


def read_version():
    scope = {}
    with open(osp.join(HERE, 'mmdpal', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def parse_requirements(path):
    """Requirement lines of ``path`` (comments and ``-r`` includes skipped)."""
    with open(osp.join(HERE, path)) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line and not line.startswith('-')]


def link_mim_files():
    """Editable installs: ``mmdpal/.mim/*`` are relative symlinks to the
    checkout's configs, tools and model index (OpenMMLab's
    add_mim_extension), so edits show at once."""
    mim = osp.join(HERE, 'mmdpal', '.mim')
    os.makedirs(mim, exist_ok=True)
    for name in MIM_FILES:
        link = osp.join(mim, name)
        target = osp.join('..', '..', name)
        if osp.islink(link) and os.readlink(link) == target:
            continue
        if osp.islink(link) or osp.isfile(link):
            os.remove(link)
        elif osp.isdir(link):
            shutil.rmtree(link)
        os.symlink(target, link)


class BuildPy(build_py):
    """Wheels carry copies of ``configs/``, ``tools/`` and
    ``model-index.yml`` in ``mmdpal/.mim/`` and ``mmdpal-scope.pth`` at the
    top of site-packages; an editable build links them instead."""

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            link_mim_files()
            return
        mim = osp.join(self.build_lib, 'mmdpal', '.mim')
        for name in MIM_FILES:
            src, dst = osp.join(HERE, name), osp.join(mim, name)
            if osp.isdir(dst):
                shutil.rmtree(dst)
            if osp.isdir(src):
                shutil.copytree(
                    src,
                    dst,
                    ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
            else:
                os.makedirs(mim, exist_ok=True)
                shutil.copyfile(src, dst)
        shutil.copyfile(
            osp.join(HERE, SCOPE_PTH), osp.join(self.build_lib, SCOPE_PTH))


class _WithScopePth:
    """An editable strategy of setuptools that also writes the .pth."""

    def __init__(self, strategy):
        self.strategy = strategy

    def __call__(self, wheel, files, mapping):
        self.strategy(wheel, files, mapping)
        with open(osp.join(HERE, SCOPE_PTH)) as f:
            wheel.writestr(SCOPE_PTH, f.read())

    def __enter__(self):
        self.strategy.__enter__()
        return self

    def __exit__(self, *exc):
        return self.strategy.__exit__(*exc)


class EditableWheel(editable_wheel):
    """``pip install -e .``: the editable wheel ships ``mmdpal-scope.pth``
    too (it imports ``mmdpal_scope`` through the editable finder)."""

    def _select_strategy(self, *args, **kwargs):
        return _WithScopePth(super()._select_strategy(*args, **kwargs))


setup(
    name='mmdpal',
    version=read_version(),
    description='DPAL: Dynamic Pattern Alignment Learning for lightweight '
    'human-centric ViTs, as an OpenMMLab plugin',
    long_description=open(osp.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(
        include=('mmdpal', 'mmdpal.*'), exclude=('mmdpal.*.tests', )),
    py_modules=['mmdpal_scope'],
    python_requires='>=3.10,<3.13',
    # The verified versions are the lower bounds, the next minor the upper
    # one (mmdpal_scope.py relies on mmengine 0.10's config lookup).
    # mmcv (2.1.x; compiled ops only for downstream) and the downstream
    # packages are installed by tools/install.sh, see
    # requirements/mminstall.txt: mmcv's only registry release is an sdist
    # that needs a patched C++20 build, mmpose needs --no-deps.
    install_requires=parse_requirements('requirements/runtime.txt'),
    extras_require=dict(
        mim=parse_requirements('requirements/mminstall.txt'),
        tests=parse_requirements('requirements/tests.txt'),
        demo=parse_requirements('requirements/demo.txt'),
    ),
    # how newer mmengine / mim discover third-party scopes
    entry_points={'mim.module': ['mmdpal = mmdpal']},
    cmdclass=dict(build_py=BuildPy, editable_wheel=EditableWheel),
    license='Apache License 2.0',
    classifiers=[
        'License :: OSI Approved :: Apache Software License',
        'Programming Language :: Python :: 3.10',
        'Programming Language :: Python :: 3.11',
        'Programming Language :: Python :: 3.12',
    ],
    zip_safe=False,
)
