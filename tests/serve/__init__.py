"""Serving a registered model over HTTP."""
