"""tools/install.sh: each mode's decisions and refusals.

The interpreter is a stand-in that answers the script's one probe with the
facts of a machine (Python, torch and its CUDA version, the installed mmcv)
and records every pip call; nvcc, nvidia-smi and df are stand-ins too, on a
PATH that holds only the tools the script uses. So the decisions of a CUDA
cluster node, a login node or an old torch are tested on this CPU machine.
"""
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
from mmdpal_testing import REPO

INSTALL = osp.join(REPO, 'tools', 'install.sh')
TOOLS = ('bash', 'sh', 'dirname', 'df', 'awk', 'ls', 'head', 'mkdir', 'cat',
         'grep', 'tr', 'env', 'sort', 'sed', 'paste', 'mktemp', 'cp', 'rm',
         'mv', 'tar', 'gzip', 'nproc', 'printf')
NO_TORCH = dict(torch='none', torchvision='none')
TORCH_CPU_221 = dict(torch='2.2.1', torch_cuda='none', torchvision='0.17.1')
TORCH_CU121 = dict(torch='2.5.1', torch_cuda='12.1', torchvision='0.20.1')
TORCH_PINNED = dict(torch='2.14.1', torch_cuda='13.0', torchvision='0.29.1')


class Machine:
    """A PATH, an interpreter and a wheel cache for one install.sh run."""

    def __init__(self, root, python='3.11', compiler=True, **facts):
        self.root = root
        self.bin = root / 'bin'
        self.bin.mkdir(parents=True)
        for tool in TOOLS:
            path = shutil.which(tool)
            if path:
                os.symlink(path, self.bin / tool)
        self.site = root / 'site'
        self.site.mkdir()
        self.cache = root / 'cache'
        self.pip_log = root / 'pip.log'
        facts = dict(
            python=python, purelib=self.site, pyheaders=1, pip=1, **facts)
        if compiler:  # a C++20 compiler that reads its source, compiles
            # nothing (exiting unread would fail the writer: SIGPIPE)
            self.script('c++', 'cat >/dev/null\nexit 0\n')
        self.script(
            'python', f'''
if [ "$1" = - ]; then  # the probe (its code comes on stdin)
    grep -q mmdpal-probe && cat <<'EOF'
{chr(10).join(f"{k}={v}" for k, v in facts.items())}
EOF
    exit 0
fi
case "$*" in
    "-m pip"*) echo "$* [PYTHONPATH=${{PYTHONPATH:-}}]" >> {self.pip_log} ;;
    *torch.version.cuda*) echo {facts.get('torch_cuda', 'none')} ;;
esac
exit 0
''')

    def script(self, name, body):
        path = self.bin / name
        path.write_text('#!/bin/bash\n' + body)
        path.chmod(0o755)

    def nvcc(self):
        self.script('nvcc', 'echo "Cuda compilation tools"\n')

    def gpus(self, *compute_caps):
        lines = '\n'.join(f'GPU {i}: NVIDIA (UUID: GPU-{i})'
                          for i in range(len(compute_caps)))
        caps = '\n'.join(compute_caps)
        self.script(
            'nvidia-smi', f'''case "$*" in
  -L) printf '%s\\n' "{lines}" ;;
  *compute_cap*) printf '%s\\n' "{caps}" ;;
esac
''')

    def cached_wheel(self, key, name='mmcv-2.1.0-cp311-cp311-linux.whl'):
        folder = self.cache / key
        folder.mkdir(parents=True)
        (folder / name).write_text('not a real wheel')
        return str(folder / name)

    def run(self, *args, **env):
        env = dict(
            PATH=str(self.bin),
            HOME=str(self.root),
            PYTHON=str(self.bin / 'python'),
            MMDPAL_WHEEL_CACHE=str(self.cache),
            **env)
        return subprocess.run(['bash', INSTALL, *args],
                              env=env,
                              capture_output=True,
                              text=True,
                              timeout=60)

    def plan(self, *args, **env):
        result = self.run('--print-plan', *args, **env)
        assert result.returncode == 0, result.stderr
        return dict(
            line.split('=', 1) for line in result.stdout.splitlines()
            if '=' in line)

    def pip_calls(self):
        if not self.pip_log.exists():
            return []
        return self.pip_log.read_text().splitlines()


def refusal(result):
    """The one ERROR line of a refused run (nothing was installed)."""
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [ln for ln in result.stderr.splitlines() if 'ERROR' in ln]
    assert len(errors) == 1, result.stderr
    assert '== mmdpal install' not in result.stdout  # no step started
    return errors[0]


@pytest.mark.parametrize('version', ['3.9', '3.13'])
def test_refuses_a_python_the_stack_does_not_run_on(tmp_path, version):
    error = refusal(Machine(tmp_path, python=version, **NO_TORCH).run())
    assert 'Python 3.10-3.12 is required' in error
    assert f'Python {version}:' in error and 'PYTHON=' in error


@pytest.mark.parametrize('version', ['3.10', '3.11', '3.12'])
def test_accepts_python_310_to_312(tmp_path, version):
    plan = Machine(tmp_path, python=version, **NO_TORCH).plan()
    assert plan['python'].startswith(version)


def test_default_installs_the_pinned_torch(tmp_path):
    plan = Machine(tmp_path, **NO_TORCH).plan()
    assert plan['mode'] == 'downstream'
    assert plan['torch'].startswith('torch 2.14.1 + torchvision 0.29.1')
    assert plan['mmcv_ops'].startswith('cpu')
    # the key needs the CUDA version of the torch still to be installed
    assert plan['mmcv_key'].startswith(
        'mmcv-2.1.0-cxx20-np2hue-v2-torch2.14.1-cuXY-cpuops (X.Y: ')


def test_keep_torch_keeps_a_supported_torch(tmp_path):
    plan = Machine(tmp_path, **TORCH_CU121).plan('--keep-torch')
    assert plan['torch'] == ('keep torch 2.5.1 (CUDA 12.1) and '
                             'torchvision 0.20.1')
    assert plan['mmcv_key'] == ('mmcv-2.1.0-cxx20-np2hue-v2-torch2.5.1-cu121'
                                '-cpuops')
    # the variable says the same as the flag
    assert Machine(
        tmp_path / 'v',
        **TORCH_CU121).plan(MMDPAL_TORCH='keep')['torch'] == plan['torch']


@pytest.mark.parametrize(
    'facts, message',
    [(NO_TORCH, '--keep-torch, but'),
     (dict(torch='2.0.1', torch_cuda='11.8',
           torchvision='0.15.2'), 'torch 2.0.1 is not supported'),
     (dict(torch='2.5.1', torch_cuda='12.1',
           torchvision='none'), 'torchvision does not import')],
    ids=['no-torch', 'old-torch', 'no-torchvision'])
def test_keep_torch_refuses_what_the_stack_cannot_use(tmp_path, facts,
                                                      message):
    error = refusal(Machine(tmp_path, **facts).run('--keep-torch'))
    assert message in error
    assert 'drop --keep-torch' in error or 'install the torchvision' in error


def test_pretrain_only_needs_no_ops_and_no_compiler(tmp_path):
    machine = Machine(tmp_path, compiler=False, **TORCH_CPU_221)
    plan = machine.plan('--pretrain-only', '--keep-torch')
    assert plan['mode'] == 'pretrain'
    assert plan['mmcv_ops'].startswith('none')
    # pure Python: one wheel for every torch
    assert plan['mmcv_key'] == 'mmcv-2.1.0-cxx20-np2hue-v2-noops'
    machine.cached_wheel(plan['mmcv_key'],
                         'mmcv_lite-2.1.0-py2.py3-none-any.whl')
    result = machine.run('--pretrain-only', '--keep-torch')
    assert result.returncode == 0, result.stderr
    calls = '\n'.join(machine.pip_calls())
    assert 'mmcv_lite-2.1.0-py2.py3-none-any.whl' in calls
    assert 'mmdet' not in calls and 'mmpose' not in calls
    assert 'torch.txt' not in calls  # the kept torch is not touched
    assert 'requirements/downstream.txt' not in calls


def test_no_gpu_means_cpu_ops_even_with_nvcc(tmp_path):
    """A login node (nvcc, CUDA torch, no GPU): CPU ops unless asked."""
    machine = Machine(tmp_path, **TORCH_CU121)
    machine.nvcc()
    machine.gpus()
    plan = machine.plan('--keep-torch')
    assert plan['mmcv_ops'].startswith('cpu (nvcc: ')
    assert 'FORCE_CUDA' not in plan


def test_cuda_ops_for_the_visible_gpus(tmp_path):
    machine = Machine(tmp_path, **TORCH_CU121)
    machine.nvcc()
    machine.gpus('8.0', '9.0', '8.0')
    plan = machine.plan('--keep-torch')
    assert plan['mmcv_ops'].startswith('cuda')
    assert plan['FORCE_CUDA'] == '1'
    assert plan['TORCH_CUDA_ARCH_LIST'] == '8.0;9.0'
    assert plan['mmcv_key'] == ('mmcv-2.1.0-cxx20-np2hue-v2-torch2.5.1-cu121'
                                '-cudaops-sm80-90')
    # the user's arch list wins
    plan = machine.plan('--keep-torch', TORCH_CUDA_ARCH_LIST='8.6')
    assert plan['TORCH_CUDA_ARCH_LIST'] == '8.6'


@pytest.mark.parametrize(
    'facts, archs', [(TORCH_CU121, '7.0;7.5;8.0;8.6;8.9;9.0+PTX'),
                     (TORCH_PINNED, '7.5;8.0;8.6;8.9;9.0;10.0;12.0+PTX')],
    ids=['cuda12', 'cuda13'])
def test_cuda_ops_asked_on_a_login_node_use_the_default_archs(
        tmp_path, facts, archs):
    machine = Machine(tmp_path, **facts)
    machine.nvcc()
    plan = machine.plan('--keep-torch', MMDPAL_CUDA_OPS='1')
    assert plan['mmcv_ops'].startswith('cuda')
    assert plan['TORCH_CUDA_ARCH_LIST'] == archs


def test_a_gpu_without_a_toolkit_stops_unless_cpu_ops_are_chosen(tmp_path):
    """A GPU node whose CUDA toolkit needs ``module load``: CPU-only ops
    would install fine and fail at run time (CrowdDet on the GPU)."""
    machine = Machine(tmp_path, **TORCH_CU121)
    machine.gpus('9.0')
    error = refusal(machine.run('--keep-torch'))
    assert '1 GPU(s) visible but no CUDA toolkit' in error
    for way_out in ('module load cuda', 'CUDA_HOME', 'MMDPAL_CUDA_OPS=0',
                    '--pretrain-only'):
        assert way_out in error
    # what the user chose explicitly
    assert machine.plan(
        '--keep-torch', MMDPAL_CUDA_OPS='0')['mmcv_ops'].startswith('cpu')
    assert machine.plan('--keep-torch',
                        '--pretrain-only')['mmcv_ops'].startswith('none')
    # the toolkit in $CUDA_HOME, off PATH, is found
    cuda_home = tmp_path / 'cuda-12.1'
    (cuda_home / 'bin').mkdir(parents=True)
    os.symlink(shutil.which('true'), cuda_home / 'bin' / 'nvcc')
    plan = machine.plan('--keep-torch', CUDA_HOME=str(cuda_home))
    assert plan['mmcv_ops'].startswith('cuda')


def fake_mmcv_sdist(folder):
    """An mmcv-2.1.0 sdist with the two lines install.sh patches."""
    import tarfile
    src = folder / 'src' / 'mmcv-2.1.0'
    (src / 'mmcv' / 'image').mkdir(parents=True)
    (src / 'setup.py').write_text("extra_compile_args = ['-std=c++17']\n")
    (src / 'mmcv' / 'image' / 'photometric.py').write_text(
        'h += np.uint8(hue_factor * 255)\n' * 2)
    (folder / 'sdist').mkdir(parents=True, exist_ok=True)
    with tarfile.open(folder / 'sdist' / 'mmcv-2.1.0.tar.gz', 'w:gz') as tar:
        tar.add(src, arcname='mmcv-2.1.0')


def test_mmcv_builds_with_its_own_setuptools(tmp_path):
    """mmcv's setup.py needs pkg_resources (setuptools < 81; < 70 with
    ops), even for pip to download the sdist. Those build tools go to a
    folder of their own, first on PYTHONPATH for mmcv alone: a fresh venv
    (any bundled setuptools, or none) and a torch that pulled setuptools
    >= 81 both work, and the environment's setuptools is never set outside
    the range its packages accept (so pip prints no conflict)."""
    machine = Machine(tmp_path, xtcocotools=1, **TORCH_PINNED)
    # the stand-in pip downloads nothing: the run stops at unpacking
    assert machine.run('--keep-torch').returncode != 0
    calls = machine.pip_calls()
    tools = next(c for c in calls if '--target' in c)
    assert 'setuptools<70 wheel<0.46' in tools
    folder = tools.split('--target ')[1].split()[0]
    download = next(c for c in calls if c.startswith('-m pip download'))
    assert 'mmcv==2.1.0' in download and '--no-build-isolation' in download
    assert download.endswith(f'[PYTHONPATH={folder}]')
    # with the sdist kept from before: the build, then it stops (no wheel)
    fake_mmcv_sdist(machine.cache)
    machine.pip_log.unlink()
    assert machine.run('--keep-torch').returncode != 0
    again = machine.pip_calls()
    folder = next(c for c in again if '--target' in c).split('--target ')[1]
    build = next(c for c in again if c.startswith('-m pip wheel'))
    assert '--no-build-isolation' in build
    assert build.endswith(f'[PYTHONPATH={folder.split()[0]}]')
    for call in calls + again:
        if 'setuptools' in call and '--target' not in call:
            assert 'setuptools>=77.0.3,<81' in call, call


def test_cuda_ops_asked_without_a_toolkit_or_cuda_torch(tmp_path):
    error = refusal(
        Machine(tmp_path / 'a',
                **TORCH_CU121).run('--keep-torch', MMDPAL_CUDA_OPS='1'))
    assert 'no CUDA toolkit' in error and 'MMDPAL_CUDA_OPS=0' in error
    machine = Machine(tmp_path / 'b', **TORCH_CPU_221)
    machine.nvcc()
    error = refusal(machine.run('--keep-torch', MMDPAL_CUDA_OPS='1'))
    assert 'torch 2.2.1 is a CPU build' in error


def test_a_cpu_ops_wheel_is_never_used_for_cuda_ops(tmp_path):
    """The same torch with a CPU-ops wheel in the cache: used where CPU ops
    are wanted; where CUDA ops are wanted it is a cache miss, so mmcv is
    compiled (here: refused, for lack of a compiler)."""
    machine = Machine(tmp_path, compiler=False, xtcocotools=1, **TORCH_CU121)
    cpu_key = machine.plan('--keep-torch')['mmcv_key']
    wheel = machine.cached_wheel(cpu_key)
    result = machine.run('--keep-torch')
    assert result.returncode == 0, result.stderr
    assert any(wheel in call for call in machine.pip_calls())
    assert any('requirements/downstream.txt' in call
               for call in machine.pip_calls())

    machine.nvcc()
    machine.gpus('9.0')
    plan = machine.plan('--keep-torch')
    assert plan['mmcv_key'] != cpu_key and 'cudaops' in plan['mmcv_key']
    assert plan['installed_mmcv_fits'] == 'no'
    error = refusal(machine.run('--keep-torch'))
    assert 'no C++ compiler' in error


def test_installed_cpu_ops_mmcv_is_kept_or_replaced(tmp_path):
    installed = dict(
        TORCH_CU121, mmcv='2.1.0', mmcv_hue=1, mmcv_ops='cpu', xtcocotools=1)
    machine = Machine(tmp_path, compiler=False, **installed)
    assert machine.plan('--keep-torch')['installed_mmcv_fits'] == 'yes'
    result = machine.run('--keep-torch')  # a second run compiles nothing
    assert result.returncode == 0, result.stderr
    assert 'mmcv 2.1.0 (cpu ops) already installed' in result.stdout
    machine.nvcc()
    machine.gpus('8.0')
    assert machine.plan('--keep-torch')['installed_mmcv_fits'] == 'no'
    # an mmcv without the numpy-2 hue patch is replaced too
    unpatched = dict(installed, mmcv_hue=0)
    assert Machine(
        tmp_path / 'u',
        **unpatched).plan('--keep-torch')['installed_mmcv_fits'] == 'no'


def test_refuses_without_a_compiler(tmp_path):
    """Nothing cached, nothing installed, no C++ compiler: one line."""
    error = refusal(Machine(tmp_path, compiler=False, **TORCH_CU121).run())
    assert 'no C++ compiler' in error and '--pretrain-only' in error


def test_refuses_with_too_little_disk(tmp_path):
    machine = Machine(tmp_path, **NO_TORCH)
    os.remove(machine.bin / 'df')
    machine.script(
        'df', 'echo "Filesystem 1K-blocks Used Available Use% Mounted"\n'
        'echo "/dev/x 10000000 9000000 3145728 90% /"\n')
    error = refusal(machine.run('--pretrain-only'))
    assert 'only 3 GB free' in error and 'torch 2.14.1' in error


def test_refuses_a_missing_wheelhouse(tmp_path):
    error = refusal(
        Machine(tmp_path, **TORCH_CU121).run('--keep-torch', '--wheelhouse',
                                             str(tmp_path / 'nowhere')))
    assert 'nowhere does not exist' in error
    assert '--build-wheelhouse' in error


def test_wheelhouse_for_another_python_needs_that_python(tmp_path):
    error = refusal(
        Machine(tmp_path, **TORCH_PINNED).run('--build-wheelhouse',
                                              str(tmp_path / 'wh'),
                                              '--python-version', '3.12'))
    assert 'PYTHON=/path/to/python3.12' in error
    plan = Machine(tmp_path / 'p',
                   **TORCH_PINNED).plan('--pretrain-only',
                                        '--build-wheelhouse',
                                        str(tmp_path / 'wh'),
                                        '--python-version', '3.12')
    assert plan['build_wheelhouse'].endswith('for Python 3.12')


def test_refuses_unknown_options(tmp_path):
    error = refusal(Machine(tmp_path, **NO_TORCH).run('--gpu'))
    assert "unknown option '--gpu'" in error


# ------------------------------------------------------------ air-gapped ----
# The packages the offline test takes from the wheelhouse: the OpenMMLab
# stack and the small packages only it needs. Everything else (torch,
# numpy, opencv, scipy, the demo's packages...) is the user's environment.
WHEELHOUSE_SET = ('mmengine', 'mmpretrain', 'mmdet', 'mmsegmentation',
                  'mmpose', 'xtcocotools', 'addict', 'yapf', 'termcolor',
                  'einops', 'mat4py', 'modelindex', 'json-tricks', 'munkres',
                  'terminaltables', 'ftfy', 'setuptools', 'wheel')


def repack(dist, folder):
    """A wheel of an installed distribution (its RECORD's files under
    site-packages, dist-info included; scripts are regenerated from its
    entry points): the packages set-up installed, offline."""
    import base64
    import csv
    import hashlib
    import io
    import zipfile
    info = next(f for f in dist.files if f.name == 'WHEEL')
    dist_info = info.parts[0]
    tags = [
        line.split(':', 1)[1].strip().split('-')
        for line in info.read_text().splitlines() if line.startswith('Tag:')
    ]
    # compressed tag set: py2-none-any + py3-none-any -> py2.py3-none-any
    tag = '-'.join('.'.join(dict.fromkeys(part)) for part in zip(*tags))
    name = dist.metadata['Name'].replace('-', '_').replace('.', '_')
    path = osp.join(folder, f'{name}-{dist.version}-{tag}.whl')
    record = []
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as whl:
        for file in dist.files:
            skip = {'RECORD', 'INSTALLER', 'REQUESTED', 'direct_url.json'}
            if '..' in file.parts or '__pycache__' in file.parts or (
                    file.parts[0] == dist_info and file.name in skip):
                continue
            data = file.locate().read_bytes()
            whl.writestr(str(file), data)
            digest = base64.urlsafe_b64encode(
                hashlib.sha256(data).digest()).rstrip(b'=').decode()
            record.append((str(file), f'sha256={digest}', len(data)))
        text = io.StringIO()
        csv.writer(text).writerows(record + [(f'{dist_info}/RECORD', '', '')])
        whl.writestr(f'{dist_info}/RECORD', text.getvalue())
    return path


def user_environment(folder):
    """This environment's site-packages, less the wheelhouse's packages,
    its .pth files and mmdpal: links to put on a fresh venv's path (the
    user's own torch and other packages, as --keep-torch finds them)."""
    import importlib.metadata as md
    import sysconfig
    site = sysconfig.get_paths()['purelib']
    own = set()
    for name in WHEELHOUSE_SET + ('mmcv', 'mmdpal', 'pip'):
        for file in md.distribution(name).files:
            own.add(file.parts[0])
    os.makedirs(folder)
    for entry in os.listdir(site):
        if (entry in own or entry.endswith('.pth') or entry == '__pycache__'
                or entry.startswith(('__editable__', 'mmdpal', '_distutils'))):
            continue
        os.symlink(osp.join(site, entry), osp.join(folder, entry))
    return folder


@pytest.mark.slow
def test_offline_install_from_a_wheelhouse(tmp_path):
    """A fresh venv (the user's torch and other packages on its path) gets
    the downstream stack from a wheelhouse, with pip's index pointed at a
    closed port: a wheelhouse that lacks a package is refused, naming it;
    a complete one installs and passes install.sh's own check.

    The wheelhouse is built here from the packages set-up installed (the
    mmcv wheel: the installed one, which is the build of this machine's
    key); `--build-wheelhouse` itself downloads, so it is not run here."""
    import importlib.metadata as md
    venv = tmp_path / 'venv'
    subprocess.run(
        [sys.executable, '-m', 'venv', str(venv)], check=True, timeout=300)
    python = str(venv / 'bin' / 'python')
    site = subprocess.run([
        python, '-c', 'import sysconfig; '
        'print(sysconfig.get_paths()["purelib"])'
    ],
                          capture_output=True,
                          text=True,
                          check=True).stdout.strip()
    links = user_environment(str(tmp_path / 'user_env'))
    with open(osp.join(site, 'user_env.pth'), 'w') as f:
        f.write(links + '\n')

    wheelhouse = tmp_path / 'wheelhouse'
    wheelhouse.mkdir()
    for name in WHEELHOUSE_SET:
        repack(md.distribution(name), str(wheelhouse))
    env = {
        k: v
        for k, v in os.environ.items() if not k.startswith(('PIP_', 'PYTHON'))
    }
    env.update(
        PYTHON=python,
        PIP_CONFIG_FILE=os.devnull,
        PIP_INDEX_URL='http://127.0.0.1:9/simple',  # nothing listens
        https_proxy='http://127.0.0.1:9',
        http_proxy='http://127.0.0.1:9')
    plan = subprocess.run(['bash', INSTALL, '--keep-torch', '--print-plan'],
                          env=env,
                          capture_output=True,
                          text=True)
    key = dict(line.split('=', 1)
               for line in plan.stdout.splitlines())['mmcv_key']
    (wheelhouse / 'mmcv' / key).mkdir(parents=True)
    repack(md.distribution('mmcv'), str(wheelhouse / 'mmcv' / key))

    def install():
        return subprocess.run(
            ['bash', INSTALL, '--keep-torch', '--wheelhouse',
             str(wheelhouse)],
            env=env,
            capture_output=True,
            text=True,
            timeout=1500)

    addict = next(wheelhouse.glob('addict-*.whl'))
    addict.rename(tmp_path / addict.name)
    error = refusal(install())
    assert f'the wheelhouse {wheelhouse} has no wheel of addict' in error
    (tmp_path / addict.name).rename(addict)

    result = install()
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'mmdpal downstream stack OK (mmcv ops: cpu)' in result.stdout
    versions = subprocess.run([
        python, '-c', 'import mmengine, mmdet, mmpose, sys; '
        'print(mmengine.__file__, mmdet.__file__, mmpose.__file__)'
    ],
                              capture_output=True,
                              text=True).stdout.split()
    assert versions and all(v.startswith(site) for v in versions)
