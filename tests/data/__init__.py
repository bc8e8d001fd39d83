"""Versioned data, remotes (local, SSH, S3, Azure) and gc, with faults injected."""
