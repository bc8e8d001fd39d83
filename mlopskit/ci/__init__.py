"""Generated GitHub Actions workflows: CI, continuous training, PR reports.

- ``workflows``: ``ci generate`` and ``ci check`` (templates rendered, checked, path filters
  from the DVC state reader).
- ``pins``: the one table of actions those workflows use, pinned by commit SHA.
"""
