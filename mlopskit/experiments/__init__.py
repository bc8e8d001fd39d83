"""Experiments as ordinary DVC experiments: plan a grid, run, compare, promote, sweep.

- ``runs``: planning a grid (``exp plan``), one run (``exp run``), show, fetch, promote.
- ``sweep``: parallel sweeps, each point a ``dvc exp run`` in its own shared clone.
"""
