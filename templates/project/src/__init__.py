"""The project's pipeline steps; each module is one dvc.yaml stage."""
