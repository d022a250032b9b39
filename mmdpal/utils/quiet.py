import warnings

# The deprecation warnings that the pinned stack prints on every command of
# a user who cannot act on them (message prefix, category). mmengine 0.10.7
# imports pkg_resources whenever it reads a config; setuptools < 81 is
# pinned for it (docs/install.md, trap 8), and setuptools >= 67.5 warns.
STACK_DEPRECATIONS = (('pkg_resources is deprecated as an API', UserWarning), )


def silence_stack_deprecations() -> None:
    """Hide exactly the third-party deprecation warnings of
    :data:`STACK_DEPRECATIONS` in this process (and its forked workers).

    Only mmdpal's entry points call it (``tools/``, ``demo/``): importing
    mmdpal changes no warning filter, so a program that imports mmdpal as a
    library sees every warning as before. Any other warning still shows.
    """
    for message, category in STACK_DEPRECATIONS:
        warnings.filterwarnings('ignore', message=message, category=category)
