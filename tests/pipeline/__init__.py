"""The pipeline package: stages, repro, commit, fresh clones."""
