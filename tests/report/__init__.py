"""The report package: the PR report, the gate, history."""
