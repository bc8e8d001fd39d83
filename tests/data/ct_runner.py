"""What CT does on a runner, for any DVC remote: a fresh clone (no cache, no outputs) of a
commit that changed a training param runs ``repro --pull --push``. Shared by the S3 and
Azure tests, which add what is particular to their store."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..conftest import Repo, git, run_cli

MODEL = "models/model.skops"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def lock_outs(root: Path) -> dict[str, str]:
    """Each DVC-cached stage output's md5 as dvc.lock records it (``cache: false``
    outputs, the metrics and plots, are in git and never in the remote)."""
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    in_git = set(git(root, "ls-files").splitlines())
    outs = [o for st in lock["stages"].values() for o in st.get("outs", [])]
    return {o["path"]: o["md5"] for o in outs if o["path"] not in in_git}


def object_key(oid: str) -> str:
    """Where a DVC 3 remote under the prefix ``store`` keeps object ``oid``."""
    return f"store/files/md5/{oid[:2]}/{oid[2:]}"


@dataclass(frozen=True)
class RoundTrip:
    runner: Path  # the fresh clone that ran
    new: dict[str, str]  # its dvc.lock's cached outputs
    before: Mapping[str, int]  # the store's objects (key -> size) before and after
    after: Mapping[str, int]
    outputs: list[str]  # everything mlopskit printed, for the secret checks


def repro_pull_push_in_a_fresh_clone(
    trained: Repo, tmp_path: Path, objects: Callable[[], Mapping[str, int]], remote: str
) -> RoundTrip:
    """``trained`` has its DVC remote ``remote`` (committed) set up; ``objects`` lists the
    store. Pushes, commits a param change, and in a fresh clone ``repro --pull --push``
    must fetch only what the stages that rerun read, train, and upload the new model (and
    the two stages' run-cache entries) and nothing else."""
    root = trained.root
    outputs: list[str] = []
    code, out, err = run_cli("data", "push", cwd=root)
    assert code == 0, err
    outputs += [out, err]
    old = lock_outs(root)
    before = dict(objects())
    assert {object_key(oid) for oid in old.values()} <= set(before)
    code, out, err = run_cli("params", "set", "train.C=0.5", cwd=root)
    assert code == 0, err
    trained.git("add", "params.yaml")
    trained.git("commit", "-qm", "train: C=0.5")

    runner = tmp_path / "runner"
    git(tmp_path, "clone", "-q", str(root), str(runner))
    assert not (runner / ".dvc" / "cache").exists()
    assert not [p for p in old if (runner / p).exists()]
    code, out, err = run_cli("repro", "--pull", "--push", cwd=runner)
    assert code == 0, err
    outputs += [out, err]
    assert out.startswith("Ran: train, evaluate\n"), out
    new = lock_outs(runner)
    assert new[MODEL] != old[MODEL]
    assert {p: new[p] for p in new if p != MODEL} == {p: old[p] for p in old if p != MODEL}
    # Fetched: the inputs of train and evaluate, as recorded; not the raw data, which only
    # the unchanged validate and prepare stages read.
    for rel in ("data/processed/train.csv", "data/processed/test.csv"):
        assert md5((runner / rel).read_bytes()) == new[rel], rel
    assert not (runner / "data" / "raw" / "data.csv").exists()
    # Uploaded: the new model, and no other data object ...
    assert md5((runner / MODEL).read_bytes()) == new[MODEL]
    after = dict(objects())
    added = set(after) - set(before)
    assert {k for k in added if k.startswith("store/files/")} == {object_key(new[MODEL])}
    # ... and the run-cache entries of the two stages that ran, which DVC counts too.
    runs = {k for k in added if k.startswith("store/runs/")}
    assert len(runs) == 2 and added == runs | {object_key(new[MODEL])}, added
    assert f"Pushed {len(added)} object(s) to DVC remote '{remote}'." in out, out
    assert after[object_key(new[MODEL])] == (runner / MODEL).stat().st_size
    assert set(before) <= set(after)
    return RoundTrip(runner, new, before, after, outputs)
