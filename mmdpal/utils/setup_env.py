import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register all modules of mmdpal (and, through the parent, mmpretrain).

    Args:
        init_default_scope (bool): Whether to set the default scope to
            ``mmdpal`` so that ``type='DPALDistiller'`` resolves without a
            prefix. Defaults to True.
    """
    import mmdpal  # noqa: F401  (imports mmpretrain's modules and ours)

    if not init_default_scope:
        return
    never_created = DefaultScope.get_current_instance() is None \
        or not DefaultScope.check_instance_created('mmdpal')
    if never_created:
        DefaultScope.get_instance('mmdpal', scope_name='mmdpal')
        return
    current_scope = DefaultScope.get_current_instance()
    if current_scope.scope_name != 'mmdpal':
        warnings.warn('The current default scope '
                      f'"{current_scope.scope_name}" is not "mmdpal", '
                      '`register_all_modules` will force the current '
                      'default scope to be "mmdpal". If this is not '
                      'expected, please set `init_default_scope=False`.')
        new_instance_name = f'mmdpal-{datetime.datetime.now()}'
        DefaultScope.get_instance(new_instance_name, scope_name='mmdpal')
