"""The registry package: GTO-format tags, lineage, signing."""
