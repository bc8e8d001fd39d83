"""Core: the project, config, the gateways, the one reader of DVC state, the lock."""
