from setuptools import find_packages, setup


def read_version():
    scope = {}
    with open('mmdpal/version.py') as f:
        exec(f.read(), scope)
    return scope['__version__']


def parse_requirements(path):
    """Requirement lines of ``path`` (comments and ``-r`` includes skipped)."""
    with open(path) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line and not line.startswith('-')]


setup(
    name='mmdpal',
    version=read_version(),
    description='DPAL: Dynamic Pattern Alignment Learning for lightweight '
    'human-centric ViTs, as an OpenMMLab plugin',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
    python_requires='>=3.11,<3.12',
    # mmcv 2.1.0 and mmpose are installed by tools/install.sh (mmcv needs a
    # C++20 build, mmpose needs --no-deps); they are listed in
    # requirements/mminstall.txt but not required here so that
    # `pip install -e .` never tries to build mmcv on its own.
    install_requires=['mmengine==0.10.7', 'mmpretrain==1.2.0'],
    extras_require=dict(
        tests=parse_requirements('requirements/tests.txt'),
        demo=parse_requirements('requirements/demo.txt'),
    ),
    license='Apache License 2.0',
    zip_safe=False,
)
