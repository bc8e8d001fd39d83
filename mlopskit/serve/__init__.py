"""Serving a registered model: fetch it md5-verified, load it with skops against the
project's exact list of trusted types, and answer requests checked by the data contract.

Only ``app`` imports Starlette, uvicorn and prometheus-client (the ``mlopskit[serve]``
extra); the other modules are light so that the CLI's ``--help`` stays fast.
"""
