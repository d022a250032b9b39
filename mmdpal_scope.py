"""Make ``_base_ = 'mmdpal::...'`` resolve in any OpenMMLab program.

mmengine 0.10.7 resolves ``pkg::path`` config names only for the scopes in
its fixed table ``mmengine.config.utils.MODULE2PACKAGE`` (open-mmlab/mmengine
#1410), and another repo's ``tools/train.py`` parses the config before any
``custom_imports`` run. So mmdpal installs ``mmdpal-scope.pth`` next to
itself in site-packages; Python runs its one line at start-up, which calls
:func:`install`. That only appends a finder to ``sys.meta_path`` (stdlib
only, nothing imported); the finder acts once, when a program imports
``mmengine.config.utils``, and then:

- adds ``'mmdpal': 'mmdpal'`` to ``MODULE2PACKAGE`` (skipped if mmengine
  already lists it: the hook switches itself off the day mmengine resolves
  third-party scopes itself);
- makes the two functions that map ``mmdpal::NAME`` to a file look in the
  folder mmdpal is imported from when the installed folder has no
  ``.mim`` (an editable install: its metadata lies in site-packages, its
  code in the checkout), and name the closest configs when NAME does not
  exist. Calls for every other package go straight to mmengine's functions.

The same finder wraps openmim's ``mim.utils.get_installed_path`` for
``mmdpal`` only (the folder with ``.mim``, as above), so ``mim train /
test / run mmdpal ...`` read the configs and tools of an editable install.

Nothing else changes; programs that never import mmengine only pay for the
``sys.meta_path`` entry (the module imports nothing beyond ``sys`` and
``os``, which Python has loaded at start-up anyway).
docs/use_from_other_repos.md says why this mechanism.
"""
import os
import os.path as osp
import sys

SCOPE = 'mmdpal'
TARGET = 'mmengine.config.utils'
MIM_TARGET = 'mim.utils'  # openmim's package-path lookup (mim train/test/run)


def mim_root(package_path):
    """The folder whose ``.mim`` holds mmdpal's configs.

    ``package_path`` is what ``mmengine.utils.get_installed_path('mmdpal')``
    returned: the package folder of a wheel install, or a folder that does
    not exist for an editable install. Then the folder that ``import
    mmdpal`` would load from is used (found without importing it).
    """
    import importlib.util
    if osp.isdir(osp.join(package_path, '.mim')):
        return package_path
    spec = importlib.util.find_spec(SCOPE)
    if spec is not None and spec.origin is not None:
        source = osp.dirname(spec.origin)
        if osp.isdir(osp.join(source, '.mim')):
            return source
    return package_path


def missing_config_message(root, name):
    """One line naming the path looked at and the closest config names."""
    import difflib
    configs = osp.join(root, '.mim', 'configs')
    path = osp.join(configs, name)
    if not osp.isdir(configs):
        return (f'mmdpal::{name}: {configs} does not exist; reinstall mmdpal '
                '(bash tools/install.sh in the mmdpal checkout, or pip '
                'install mmdpal)')
    known = []
    for folder, _, files in sorted(os.walk(configs, followlinks=True)):
        for file in files:
            if file.endswith('.py'):
                known.append(
                    osp.relpath(osp.join(folder, file),
                                configs).replace(osp.sep, '/'))
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
    hint = ('closest: ' +
            ', '.join(f'mmdpal::{c}'
                      for c in close) if close else 'see the names under it')
    return f'mmdpal::{name}: no config {path} ({hint})'


def _is_mmdpal(package_path):
    return osp.basename(osp.normpath(package_path)) == SCOPE


def patch(utils):
    """Teach the module ``mmengine.config.utils`` the ``mmdpal`` scope."""
    if SCOPE in utils.MODULE2PACKAGE:
        return  # mmengine (or a second copy of this hook) resolves it
    utils.MODULE2PACKAGE[SCOPE] = SCOPE
    by_metafile = getattr(utils, '_get_external_cfg_path', None)
    by_path = getattr(utils, '_get_external_cfg_base_path', None)
    if by_metafile is None or by_path is None:
        return  # another mmengine: the table entry is all it gets

    def _get_external_cfg_path(package_path, cfg_file):
        if _is_mmdpal(package_path):
            package_path = mim_root(package_path)
        return by_metafile(package_path, cfg_file)

    def _get_external_cfg_base_path(package_path, cfg_name):
        if not _is_mmdpal(package_path):
            return by_path(package_path, cfg_name)
        root = mim_root(package_path)
        if not osp.isfile(osp.join(root, '.mim', 'configs', cfg_name)):
            raise FileNotFoundError(missing_config_message(root, cfg_name))
        return by_path(root, cfg_name)

    for new in (_get_external_cfg_path, _get_external_cfg_base_path):
        new.__doc__ = f'mmdpal_scope: mmdpal-aware {new.__name__}.'
        setattr(utils, new.__name__, new)


def patch_mim(utils):
    """Teach openmim's ``get_installed_path`` where an editable mmdpal keeps
    its ``.mim`` (mim's commands bind it from ``mim.utils`` after this)."""
    original = getattr(utils, 'get_installed_path', None)
    if original is None or getattr(original, '_mmdpal_scope', False):
        return

    def get_installed_path(package):
        path = original(package)
        return mim_root(path) if package == SCOPE else path

    get_installed_path.__doc__ = original.__doc__
    get_installed_path._mmdpal_scope = True
    utils.get_installed_path = get_installed_path
    inner = sys.modules.get(utils.__name__ + '.utils')
    if inner is not None and getattr(inner, 'get_installed_path',
                                     None) is original:
        inner.get_installed_path = get_installed_path


PATCHES = {TARGET: patch, MIM_TARGET: patch_mim}


class _Loader:
    """Runs the real loader of a module in ``PATCHES``, then patches it,
    before the modules that use it bind its functions."""

    def __init__(self, loader, patch_module):
        self.loader = loader
        self.patch_module = patch_module

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        try:
            self.patch_module(module)
        except Exception as error:  # never break mmengine's / mim's import
            import warnings
            warnings.warn(f'mmdpal_scope: mmdpal will not resolve in '
                          f'{module.__name__} ({error!r}); please report it '
                          'to mmdpal')

    def __getattr__(self, name):  # get_source, get_filename, ...
        return getattr(self.loader, name)


class ScopeFinder:
    """Wraps the loader of the modules in ``PATCHES``; inert otherwise."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in PATCHES:
            return None
        for finder in sys.meta_path:
            if isinstance(finder, ScopeFinder):
                continue
            find = getattr(finder, 'find_spec', None)
            spec = find(fullname, path, target) if find else None
            if spec is not None and spec.loader is not None:
                spec.loader = _Loader(spec.loader, PATCHES[fullname])
                return spec
        return None


def install():
    """Put the finder in ``sys.meta_path`` (once); patch at once if
    ``mmengine.config.utils`` is already imported."""
    if any(isinstance(f, ScopeFinder) for f in sys.meta_path):
        return
    for name, patch_module in PATCHES.items():
        if name in sys.modules:
            patch_module(sys.modules[name])
    if not all(name in sys.modules for name in PATCHES):
        sys.meta_path.insert(0, ScopeFinder())
