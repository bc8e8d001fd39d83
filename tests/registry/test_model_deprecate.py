"""`mlopskit model deprecate`: one GTO deprecation tag, pushed with --push, refused twice."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mlopskit import errors

from ..conftest import Repo, git, run_cli


def test_model_deprecate_tags_the_latest_version_and_pushes_it(trained: Repo, origin: Path) -> None:
    trained.git("remote", "add", "origin", str(origin))
    trained.git("push", "-q", "origin", "main")
    code, _, err = run_cli("model", "register", "model", "--version", "v1.2.0", cwd=trained.root)
    assert code == 0, err
    registered = trained.git("rev-list", "-n", "1", "model@v1.2.0").strip()
    time.sleep(1.1)  # scenario, not synchronisation: GTO orders events by their second
    code, out, err = run_cli("model", "deprecate", "model", "--push", cwd=trained.root)
    assert code == 0, err
    assert "model@deprecated" in out
    # An annotated tag on the latest version's commit, in GTO's format, and on origin.
    assert trained.git("cat-file", "-t", "model@deprecated").strip() == "tag"
    assert trained.git("rev-list", "-n", "1", "model@deprecated").strip() == registered
    assert "refs/tags/model@deprecated" in git(origin, "show-ref", "--tags")
    code, out, _ = run_cli("model", "list", "--json", cwd=trained.root)
    (row,) = [r for r in json.loads(out) if r["artifact"] == "model"]
    assert row["deprecated"] is True
    # Twice is refused, naming it; nothing new is tagged.
    tags = trained.git("tag", "-l")
    code, _, err = run_cli("model", "deprecate", "model", cwd=trained.root)
    assert code == errors.PRECONDITION and "'model' is already deprecated" in err
    assert trained.git("tag", "-l") == tags
