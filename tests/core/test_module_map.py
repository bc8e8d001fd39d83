"""The README's module map is the modules' own docstrings: each module's first paragraph,
top-level modules first, then each package and its modules (issue 14: the map must match
the code). ``python -m tests.core.test_module_map`` rewrites the map; the test only reads."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "mlopskit"
BEGIN = "| Module | What it owns |\n|---|---|\n"
END = "\n\n<!-- module-map: end -->"


def _summary(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    first = doc.strip().split("\n\n", 1)[0]
    return " ".join(line.strip() for line in first.splitlines())


def expected_rows() -> list[str]:
    rows = [
        f"| `{p.stem}` | {_summary(p)} |"
        for p in sorted(PACKAGE.glob("*.py"))
        if p.name != "__init__.py" and p.stem != "__main__"
    ]
    for pkg in sorted(d for d in PACKAGE.iterdir() if (d / "__init__.py").is_file()):
        if pkg.name == "templates":
            continue
        rows.append(f"| **`{pkg.name}/`** | {_summary(pkg / '__init__.py')} |")
        rows += [
            f"| `{pkg.name}.{p.stem}` | {_summary(p)} |"
            for p in sorted(pkg.glob("*.py"))
            if p.name != "__init__.py" and p.stem != "__main__"
        ]
    return rows


def _table(readme: str) -> tuple[int, int]:
    start = readme.index(BEGIN) + len(BEGIN)
    return start, readme.index(END, start)


def test_the_readme_module_map_is_the_docstrings() -> None:
    readme = (ROOT / "README.md").read_text()
    start, end = _table(readme)
    assert readme[start:end].strip().splitlines() == expected_rows()


def test_the_layers_line_names_every_feature_module() -> None:
    readme = (ROOT / "README.md").read_text()
    layers = re.search(r"^Layers, top to bottom.*$", readme, re.M)
    assert layers is not None
    named = set(re.findall(r"`(\w+)`", layers.group(0)))
    features = {"data", "gc", "params", "metrics", "remote", "imported", "doctor", "quickstart"}
    packages = {d.name for d in PACKAGE.iterdir() if (d / "__init__.py").is_file()}
    assert features | (packages - {"templates"}) <= named, sorted(named)


if __name__ == "__main__":
    text = (ROOT / "README.md").read_text()
    s, e = _table(text)
    (ROOT / "README.md").write_text(text[:s] + "\n".join(expected_rows()) + text[e:])
    sys.exit(0)
