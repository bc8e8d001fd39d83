"""What changed, for a reviewer: the pull-request report, the gate, charts, history.

- ``build``: the ``Report`` dataclass (gate verdict, metrics, params, plots, data changes,
  lineage) for a base and a head.
- ``render``: a Report as GitHub Markdown, self-contained HTML or JSON.
- ``load``: a report written as JSON, read back as untrusted input.
- ``github``: posting it as one sticky pull-request comment (GitHub's REST API).
- ``gate``: the quality gate (``check``, ``gate add/remove/list``) over metrics.
- ``charts``: PNG charts from DVC's Vega-Lite templates; ``history``: metrics along commits;
  ``datadiff``: what changed in DVC-tracked data.
"""
