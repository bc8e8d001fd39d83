"""Data quality: reading tables, their schema, validating them, and drift.

- ``schema``: read CSV/Parquet tables in chunks, infer a schema, keep it as YAML.
- ``validation``: ``data validate``, a table against a schema, streaming in bounded memory.
- ``drift``: ``monitor drift``, current data against reference data feature by feature
  (PSI, KS, chi-square), and its PNG report.
- ``predictions``: reading the prediction log ``serve --log-dir`` writes (``--current LOGDIR``).
"""
