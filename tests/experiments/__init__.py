"""The experiments package: runs, sweeps, Ctrl-C."""
