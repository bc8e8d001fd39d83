"""The model registry on GTO-format Git tags, readable by ``gto`` itself.

- ``tags``: names and semver versions checked, the registry state read from tags (through
  the ``_gto`` gateway), and the commands that write tags: register, promote, unpromote,
  deprecate, list, show.
- ``lineage``: what a registered model is made of, its model card, fetching it.
- ``signing``: SSH-signed promotions for the stages ``registry.require_signed`` names.
"""
