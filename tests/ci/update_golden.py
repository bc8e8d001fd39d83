"""Rewrite the golden workflow files from the current templates.

    python -m tests.ci.update_golden

The golden test (tests/ci/test_workflows.py::test_golden_files) only compares and never
writes; after a deliberate template change, run this, then review the diff under
tests/ci/golden/ like any other change.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_VARIANTS = ("none-commit", "s3-oidc-pr-gpu")


def render(root: Path, config_text: str) -> dict[str, str]:
    """Generate the workflows for one mlopskit.yaml in a fresh repo: {path: text}."""
    from mlopskit.ci import workflows
    from mlopskit.project import Project

    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    (root / ".dvc").mkdir()
    (root / "mlopskit.yaml").write_text(config_text)
    workflows.generate(Project(root=root))
    return {
        p.relative_to(root).as_posix(): p.read_text() for p in (root / ".github").rglob("*.y*ml")
    }


def stored(variant: str) -> dict[str, str]:
    folder = GOLDEN / variant
    return {p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*.y*ml")}


def main() -> int:
    from tests.ci.test_workflows import all_variants

    configs = dict(all_variants())
    with tempfile.TemporaryDirectory() as tmp:
        for variant in GOLDEN_VARIANTS:
            files = render(Path(tmp) / variant, configs[variant])
            folder = GOLDEN / variant
            shutil.rmtree(folder, ignore_errors=True)
            for rel, text in files.items():
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                (folder / rel).write_text(text)
            print(f"{variant}: {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
