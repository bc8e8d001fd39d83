"""The quality package: schemas, validation, drift."""
