"""The model registry on GTO-format tags: register, promote, lineage, cards, fetching."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlopskit import at_revision, errors
from mlopskit.registry import lineage
from mlopskit.registry import tags as registry

from ..conftest import Repo, dvc, git, run_cli

pytestmark = pytest.mark.slow


def gto_show(root: Path, *args: str) -> object:
    res = subprocess.run(
        [sys.executable, "-m", "gto.cli", "show", *args, "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:  # older gto has no __main__ in gto.cli: use the console script
        gto = Path(sys.executable).parent / "gto"
        res = subprocess.run(
            [str(gto), "show", *args, "--json"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(res.stdout)


def test_register_promote_and_gto_agrees(trained: Repo) -> None:
    code, out, err = run_cli("model", "register", "model", "--bump", "minor", cwd=trained.root)
    assert code == 0, err
    assert "Registered model@v0.1.0" in out
    assert (
        run_cli("model", "promote", "model", "v0.1.0", "--stage", "staging", cwd=trained.root)[0]
        == 0
    )
    assert (
        run_cli("model", "promote", "model", "v0.1.0", "--stage", "prod", cwd=trained.root)[0] == 0
    )
    tags = trained.git("tag", "-l").split()
    assert sorted(tags) == ["model#prod#2", "model#staging#1", "model@v0.1.0"]
    # annotated tags, as GTO writes them
    assert trained.git("cat-file", "-t", "model@v0.1.0").strip() == "tag"
    shown = gto_show(trained.root)
    assert shown == {
        "model": {
            "version": "v0.1.0",
            "stage": {"staging": "v0.1.0", "prod": "v0.1.0"},
            "registered": True,
            "active": True,
        }
    }
    code, out, _ = run_cli("model", "list", "--json", cwd=trained.root)
    (row,) = json.loads(out)
    assert row["latest"] == "v0.1.0" and row["stages"] == {"prod": "v0.1.0", "staging": "v0.1.0"}
    # unpromote writes GTO's cancel form, and gto agrees
    assert run_cli("model", "unpromote", "model", "--stage", "staging", cwd=trained.root)[0] == 0
    assert "model#staging!#3" in trained.git("tag", "-l").split()
    assert gto_show(trained.root)["model"]["stage"] == {"prod": "v0.1.0"}  # type: ignore[index]
    history = subprocess.run(
        [str(Path(sys.executable).parent / "gto"), "history", "model", "--json"],
        cwd=trained.root,
        capture_output=True,
        text=True,
        check=True,
    )
    events = {e["event"] for e in json.loads(history.stdout)}
    assert {"registration", "assignment", "unassignment"} <= events


def test_show_hashes_equal_dvc_lock_at_that_commit(trained: Repo) -> None:
    registry.register(trained.project(), "model", version="v1.0.0")
    first = trained.head()
    trained.write(
        "params.yaml", (trained.root / "params.yaml").read_text().replace("C: 1.0", "C: 0.2")
    )
    assert run_cli("repro", "--commit", cwd=trained.root)[0] == 0  # no git remote to push to
    assert run_cli("data", "push", cwd=trained.root)[0] == 0
    registry.register(trained.project(), "model", bump_part="minor")
    lin = lineage.show(trained.project(), "model@v1.0.0")
    assert lin.commit == first
    lock = at_revision.lock_md5s(trained.root, first)
    assert lin.model_md5 == lock["models/model.skops"]
    assert lin.data["data/raw/data.csv"] == lock["data/raw/data.csv"]
    assert lin.params["train.C"] == 1.0
    assert lin.metrics["reports/metrics.json"]["accuracy"] > 0.5
    latest = lineage.show(trained.project(), "model")
    assert latest.version == "v1.1.0" and latest.params["train.C"] == 0.2
    code, out, _ = run_cli("model", "show", "model@v1.0.0", "--json", cwd=trained.root)
    assert json.loads(out)["model_md5"] == lock["models/model.skops"]
    code, out, _ = run_cli("model", "card", "model@v1.1.0", cwd=trained.root)
    assert out.startswith("# Model card: model v1.1.0")
    assert "Classifier trained by the" in out and "| train.C | 0.2 |" in out


def test_enforce_order(trained: Repo) -> None:
    trained.write(
        "mlopskit.yaml",
        (trained.root / "mlopskit.yaml").read_text()
        + "\nregistry:\n  stages: [dev, staging, prod]\n  enforce_order: true\n",
    )
    trained.git("commit", "-qam", "enforce order")
    registry.register(trained.project(), "model", version="v1.0.0", rev="HEAD~1")
    code, _, err = run_cli(
        "model", "promote", "model", "v1.0.0", "--stage", "prod", cwd=trained.root
    )
    assert code == errors.PRECONDITION and "has not passed staging" in err
    assert "model#prod" not in trained.git("tag", "-l")
    assert (
        run_cli("model", "promote", "model", "v1.0.0", "--stage", "dev", cwd=trained.root)[0] == 0
    )
    assert (
        run_cli("model", "promote", "model", "v1.0.0", "--stage", "staging", cwd=trained.root)[0]
        == 0
    )
    assert (
        run_cli("model", "promote", "model", "v1.0.0", "--stage", "prod", cwd=trained.root)[0] == 0
    )
    # A stage outside registry.stages is usable (GTO has no such list); order binds only
    # the configured ones.
    code, out, err = run_cli(
        "model", "promote", "model", "v1.0.0", "--stage", "qa", cwd=trained.root
    )
    assert code == 0, err
    assert "model#qa#4" in trained.git("tag", "-l").split()
    code, out, _ = run_cli("model", "list", cwd=trained.root)
    header, _, row = out.splitlines()
    assert header.split() == ["artifact", "latest", "dev", "staging", "prod", "qa"]
    assert row.split() == ["model", "v1.0.0", "v1.0.0", "v1.0.0", "v1.0.0", "v1.0.0"]
    assert gto_show(trained.root)["model"]["stage"]["qa"] == "v1.0.0"  # type: ignore[index]
    code, _, err = run_cli(
        "model", "promote", "model", "v1.0.0", "--stage", "bad stage", cwd=trained.root
    )
    assert code == errors.USAGE and "not a valid stage name" in err


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("a//b", "git tag name"),
        ("-rf", "not valid"),
        ("model-", "not valid"),
        ("a model", "not valid"),
        ("model@1", "not valid"),
        ("Model", "differs only in case"),
        ("x" * 201, "not valid"),
    ],
)
def test_bad_names(trained: Repo, name: str, why: str) -> None:
    code, _, err = (
        run_cli("model", "register", "--", name, cwd=trained.root)
        if name.startswith("-")
        else run_cli("model", "register", name, cwd=trained.root)
    )
    assert code == errors.USAGE, err
    assert why in err or "longer than" in err
    assert trained.git("tag", "-l") == ""


@pytest.mark.parametrize("version", ["v1.2", "1.2.3", "v01.2.3", "v1.2.3.4"])
def test_bad_versions(trained: Repo, version: str) -> None:
    code, _, err = run_cli("model", "register", "model", "--version", version, cwd=trained.root)
    assert code == errors.USAGE and "SemVer" in err


def test_refusals_exit_3(trained: Repo) -> None:
    # the version exists
    registry.register(trained.project(), "model", version="v1.0.0")
    code, _, err = run_cli("model", "register", "model", "--version", "v1.0.0", cwd=trained.root)
    assert code == errors.PRECONDITION and "already" in err
    # dvc.lock out of date with the workspace at that revision
    trained.write("src/train.py", (trained.root / "src/train.py").read_text() + "# changed\n")
    trained.git("commit", "-qam", "code change, not retrained")
    code, _, err = run_cli("model", "register", "model", "--version", "v2.0.0", cwd=trained.root)
    assert code == errors.PRECONDITION and "out of date" in err and "train" in err
    assert "model@v2.0.0" not in trained.git("tag", "-l")


def test_staleness_of_an_older_commit_with_the_cache_elsewhere(
    trained: Repo, tmp_path: Path
) -> None:
    """An older commit is checked in a temporary worktree that uses the project's DVC
    cache wherever DVC's configuration puts it (here `dvc cache dir --local`)."""
    moved = tmp_path / "moved-cache"
    shutil.move(str(trained.root / ".dvc" / "cache"), moved)
    dvc(trained.root, "cache", "dir", "--local", str(moved))
    trained.write("src/train.py", (trained.root / "src/train.py").read_text() + "# changed\n")
    trained.git("commit", "-qam", "code change, not retrained")
    trained.write("NOTES.md", "notes\n")
    trained.git("add", "NOTES.md")
    trained.git("commit", "-qm", "notes")
    code, _, err = run_cli(
        "model", "register", "model", "--rev", "HEAD~1", "--version", "v2.0.0", cwd=trained.root
    )
    assert code == errors.PRECONDITION and "out of date" in err and "train" in err, err
    code, _, err = run_cli(
        "model", "register", "model", "--rev", "HEAD~2", "--version", "v1.0.0", cwd=trained.root
    )
    assert code == 0, err
    assert trained.git("tag", "-l").split() == ["model@v1.0.0"]
    assert not (trained.root / ".dvc" / "cache").exists()  # nothing made a second cache


def test_model_not_in_remote_is_refused(trained: Repo) -> None:
    shutil.rmtree(trained.remote)
    trained.remote.mkdir()
    code, _, err = run_cli("model", "register", "model", cwd=trained.root)
    assert code == errors.PRECONDITION
    assert "not in the DVC remote" in err and "data push" in err
    assert trained.git("tag", "-l") == ""


def test_get_from_a_fresh_clone_and_integrity(trained: Repo, tmp_path: Path) -> None:
    registry.register(trained.project(), "model", version="v1.0.0")
    registry.promote(trained.project(), "model", "v1.0.0", "prod")
    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(trained.root), str(clone))
    (clone / ".dvc" / "config.local").write_text((trained.root / ".dvc/config.local").read_text())
    out = tmp_path / "empty"
    code, stdout, err = run_cli("model", "get", "model#prod", "-o", str(out), cwd=clone)
    assert code == 0, err
    lock = at_revision.lock_md5s(trained.root, trained.head())
    import hashlib

    assert hashlib.md5((out / "model.skops").read_bytes()).hexdigest() == lock["models/model.skops"]
    assert git(clone, "status", "--porcelain") == ""
    assert not (clone / "models" / "model.skops").exists()  # workspace untouched
    # A corrupt object in the remote: exit 5, nothing written.
    md5 = lock["models/model.skops"]
    obj = trained.remote / "files" / "md5" / md5[:2] / md5[2:]
    obj.chmod(0o644)
    data = bytearray(obj.read_bytes())
    data[100] ^= 0xFF
    obj.write_bytes(bytes(data))
    out2 = tmp_path / "second"
    code, _, err = run_cli("model", "get", "model@v1.0.0", "-o", str(out2), cwd=clone)
    assert code == errors.INTEGRITY and md5 in err
    assert not any(out2.iterdir())


def _clone_with_remote(trained: Repo, origin: Path, where: Path) -> Path:
    git(where.parent, "clone", "-q", str(origin), str(where))
    (where / ".dvc" / "config.local").write_text((trained.root / ".dvc/config.local").read_text())
    return where


def test_tag_pushes_go_to_the_branchs_remote_not_a_hard_coded_origin(
    trained: Repo, origin: Path
) -> None:
    """Issue 14: registry pushes go through scm.push, to the remote `git push` would use
    for the current branch (here `upstream`; there is no `origin`), not to `origin`."""
    trained.git("remote", "add", "upstream", str(origin))
    trained.git("push", "-q", "-u", "upstream", "main")
    code, out, err = run_cli(
        "model", "register", "model", "--version", "v1.0.0", "--push", cwd=trained.root
    )
    assert code == 0, err
    assert "pushed" in out
    code, _, err = run_cli(
        "model", "promote", "model", "v1.0.0", "--stage", "dev", "--push", cwd=trained.root
    )
    assert code == 0, err
    assert sorted(git(origin, "tag", "-l").split()) == ["model#dev#1", "model@v1.0.0"]


def test_a_tag_that_lands_first_during_the_push_is_exit_3(trained: Repo, origin: Path) -> None:
    """The race test_concurrent_registrations_exactly_one_wins runs, made certain: another
    push creates the tag after origin advertised its refs and before it updates them
    (here a pre-receive hook does), so git says "[remote rejected] (failed to update ref)
    ... reference already exists". That is a lost race (exit 3, the local tag removed),
    not a refused push (exit 4); scm.push once judged it the other way round."""
    trained.git("remote", "add", "origin", str(origin))
    trained.git("push", "-q", "-u", "origin", "main")
    hook = origin / "hooks" / "pre-receive"
    hook.write_text(
        '#!/bin/sh\nwhile read old new ref; do mkdir -p "$(dirname "$ref")"; '
        'echo "$new" > "$ref"; done\n'
    )
    hook.chmod(0o755)
    code, _, err = run_cli(
        "model", "register", "model", "--version", "v1.0.0", "--push", cwd=trained.root
    )
    assert code == errors.PRECONDITION, err
    assert "already exists on 'origin'" in err and "another registration won" in err
    assert trained.git("tag", "-l").split() == []


def test_concurrent_registrations_exactly_one_wins(
    trained: Repo, origin: Path, tmp_path: Path
) -> None:
    """C2.17: the same version from two clones at once: one tag, the other exits 3."""
    trained.git("remote", "add", "origin", str(origin))
    trained.git("push", "-q", "origin", "main")
    a = _clone_with_remote(trained, origin, tmp_path / "a")
    b = _clone_with_remote(trained, origin, tmp_path / "b")
    cmd = [
        sys.executable,
        "-m",
        "mlopskit",
        "model",
        "register",
        "model",
        "--version",
        "v3.0.0",
        "--push",
    ]
    procs = [
        subprocess.Popen(cmd, cwd=c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in (a, b)
    ]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, errors.PRECONDITION], results
    loser = next(err for code, err in results if code != 0)
    assert "already exists" in loser
    assert git(origin, "tag", "-l").split() == ["model@v3.0.0"]
    # the loser's local tag is gone, so its registry agrees with origin after a fetch
    for c in (a, b):
        git(c, "fetch", "-q", "--tags", "origin")
        assert git(c, "tag", "-l").split() == ["model@v3.0.0"]


def test_describe_tag_reports_gtos_event_kind_and_the_newest(trained: Repo) -> None:
    """Every GTO tag format: the event (as GTO's action names it), artifact, version,
    stage; `current` is false once a later event of that stage exists."""
    project = trained.project()
    registry.register(project, "model", version="v1.0.0")
    registry.promote(project, "model", "v1.0.0", "staging")
    assert lineage.describe_tag(trained.root, "model#staging#1") == {
        "event": "assignment",
        "artifact": "model",
        "version": "v1.0.0",
        "stage": "staging",
        "file": "model.skops",
        "current": "true",
    }
    reg = lineage.describe_tag(trained.root, "model@v1.0.0")
    assert (reg["event"], reg["version"], reg["stage"]) == ("registration", "v1.0.0", "")
    un = registry.unpromote(project, "model", "staging")
    assert un.tag == "model#staging!#2"
    info = lineage.describe_tag(trained.root, un.tag)
    assert info["event"] == "unassignment" and info["stage"] == "staging"
    assert info["version"] == "v1.0.0" and info["current"] == "true"
    # the assignment it undid is no longer the newest event of staging
    assert lineage.describe_tag(trained.root, "model#staging#1")["current"] == "false"
    registry.promote(project, "model", "v1.0.0", "staging")
    assert lineage.describe_tag(trained.root, "model#staging#3")["current"] == "true"
    assert lineage.describe_tag(trained.root, un.tag)["current"] == "false"
    dep = registry.deprecate(project, "model")
    assert lineage.describe_tag(trained.root, dep)["event"] == "deprecation"
    git(trained.root, "tag", "-a", "-m", "Deregistering", "model@v1.0.0!", "model@v1.0.0^{}")
    assert lineage.describe_tag(trained.root, "model@v1.0.0!")["event"] == "deregistration"
    # --github-output writes every key; a tag that is not in the clone is refused (exit 2)
    out = trained.root.parent / "gh-output"
    os.environ["GITHUB_OUTPUT"] = str(out)
    try:
        code, printed, err = run_cli(
            "model", "describe-tag", "model#staging!#2", "--github-output", cwd=trained.root
        )
    finally:
        del os.environ["GITHUB_OUTPUT"]
    assert code == 0, err
    assert "event=unassignment\n" in printed and "current=false\n" in out.read_text()
    code, _, err = run_cli("model", "describe-tag", "model#staging!#5", cwd=trained.root)
    assert code == errors.USAGE and "no tag 'model#staging!#5' in this clone" in err
    code, _, err = run_cli("model", "describe-tag", "model#", cwd=trained.root)
    assert code == errors.USAGE and "not a GTO registry tag" in err


def test_promote_inside_actions_dispatches_the_deploy_workflow(
    trained: Repo, origin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tag pushed with GITHUB_TOKEN starts no workflow: inside Actions, `model promote
    --push` starts deploy.yml by workflow_dispatch with the tag as its input."""
    from mlopskit.ci import workflows
    from mlopskit.project import Project

    from ..fake_github import State, serve

    res = workflows.generate(Project(root=trained.root), force=True)
    assert res.written == [], res.written  # the quickstart committed its workflows
    git(trained.root, "remote", "add", "origin", str(origin))
    git(trained.root, "push", "-q", "origin", "main")
    registry.register(trained.project(), "model", version="v1.0.0", push=True)
    state = State(repo="acme/churn", token="test-token")
    with serve(state) as url:
        monkeypatch.setenv("GITHUB_REPOSITORY", "acme/churn")
        monkeypatch.setenv("GITHUB_API_URL", url)
        monkeypatch.setenv("GITHUB_TOKEN", "test-token")
        monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
        code, out, err = run_cli(
            "model", "promote", "model", "v1.0.0", "--stage", "dev", "--push", cwd=trained.root
        )
        assert code == 0, err
        assert state.dispatches == [] and "started" not in out  # not inside Actions
        monkeypatch.setenv("GITHUB_ACTIONS", "true")
        code, out, err = run_cli(
            "model", "promote", "model", "v1.0.0", "--stage", "prod", "--push", cwd=trained.root
        )
        assert code == 0, err
        assert state.dispatches == [
            ("deploy.yml", {"ref": "main", "inputs": {"tag": "model#prod#2"}})
        ]
        assert "started deploy.yml (workflow_dispatch)" in out
        (request,) = [r for r in state.requests if r[0] == "POST"]
        assert request[1] == "/repos/acme/churn/actions/workflows/deploy.yml/dispatches"
        # a token that may not dispatch: the tag stays pushed, exit 4 with the way out
        monkeypatch.setenv("GITHUB_TOKEN", "read-only")
        code, _, err = run_cli(
            "model", "promote", "model", "v1.0.0", "--stage", "staging", "--push", cwd=trained.root
        )
    assert code == errors.REMOTE
    assert "model#staging#3 is pushed, but deploy.yml did not start" in err
    assert "actions: write" in err and "gh workflow run deploy.yml" in err
    assert "model#staging#3" in git(origin, "tag", "-l").split()
    assert len(state.dispatches) == 1


def _dvc_ls_md5(root: Path, rev: str, path: str) -> str:
    """DVC's own answer: the md5 of ``path`` at ``rev`` (``dvc ls --show-hash``)."""
    from ..conftest import dvc

    parent, _, name = path.rpartition("/")
    res = dvc(root, "ls", ".", parent, "--rev", rev, "--show-hash", "--json")
    (entry,) = [e for e in json.loads(res.stdout) if e["path"] == name]
    return str(entry["md5"])


def test_md5_is_the_producing_stages_out_not_a_stale_downstream_dep(
    trained: Repo, tmp_path: Path
) -> None:
    """Issue 12.1: retrain without re-running `evaluate` (which deps on the model) and
    register that commit with GTO's tag, as `gto register` does: show, card and get must
    give the new model, not the md5 evaluate last consumed."""
    import hashlib

    from ..conftest import dvc

    registry.register(trained.project(), "model", version="v1.0.0")
    trained.write(
        "params.yaml", (trained.root / "params.yaml").read_text().replace("C: 1.0", "C: 0.3")
    )
    dvc(trained.root, "repro", "train")  # evaluate is now stale, and not re-run
    dvc(trained.root, "push")
    trained.git("add", "dvc.lock", "params.yaml")
    trained.git("commit", "-qm", "retrain only")
    trained.git("tag", "-a", "-m", "Registering artifact model version v1.1.0", "model@v1.1.0")
    new = _dvc_ls_md5(trained.root, "model@v1.1.0", "models/model.skops")
    old = _dvc_ls_md5(trained.root, "model@v1.0.0", "models/model.skops")
    assert new != old
    lock = at_revision.load_structured(trained.root, "model@v1.1.0", "dvc.lock")
    assert lock["stages"]["evaluate"]["deps"][1]["md5"] == old  # the stale entry
    assert lineage.show(trained.project(), "model@v1.1.0").model_md5 == new
    code, out, _ = run_cli("model", "show", "model@v1.1.0", "--json", cwd=trained.root)
    shown = json.loads(out)
    assert shown["model_md5"] == new and "stage 'train'" in shown["model_source"]
    assert shown["data"]["models/model.skops"] == new
    assert new in run_cli("model", "card", "model@v1.1.0", cwd=trained.root)[1]
    # get, from a fresh clone (nothing cached): the bytes dvc get delivers
    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(trained.root), str(clone))
    (clone / ".dvc" / "config.local").write_text((trained.root / ".dvc/config.local").read_text())
    out_dir = str(tmp_path / "o")
    code, stdout, err = run_cli("model", "get", "model@v1.1.0", "-o", out_dir, cwd=clone)
    assert code == 0, err
    got = (tmp_path / "o" / "model.skops").read_bytes()
    assert hashlib.md5(got).hexdigest() == new and f"md5 {new} verified" in stdout
    dvc(clone, "get", ".", "models/model.skops", "--rev", "model@v1.1.0", "-o", str(tmp_path / "d"))
    assert (tmp_path / "d").read_bytes() == got


def test_get_in_a_clone_without_a_dvc_remote(trained: Repo, tmp_path: Path) -> None:
    """Issue 10: the default remote lives in .dvc/config.local, so a clone has none."""
    registry.register(trained.project(), "model", version="v1.0.0")
    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(trained.root), str(clone))
    code, _, err = run_cli("model", "get", "model@v1.0.0", "-o", str(tmp_path / "o"), cwd=clone)
    assert code == errors.USAGE, err
    assert "no DVC remote is configured in this clone" in err
    assert "mlopskit remote add NAME URL --default" in err
    assert "Checkout failed" not in err and "Traceback" not in err
    assert not (tmp_path / "o" / "model.skops").exists()


def test_get_over_an_http_remote_and_when_it_cannot_be_reached(
    trained: Repo, tmp_path: Path
) -> None:
    """A DVC remote served over HTTP (a real server on 127.0.0.1 serving the remote's
    folder): `model get` fetches and verifies from it. Once nothing answers there, exit 4
    naming the remote and the endpoint, where DVC itself calls the object missing ("Is
    your cache up to date?"); not exit 3 "in neither the cache nor the remote"."""
    import functools
    import hashlib
    import http.server
    import socket
    import threading

    registry.register(trained.project(), "model", version="v1.0.0")
    md5 = at_revision.lock_md5s(trained.root, trained.head())["models/model.skops"]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(trained.remote))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(trained.root), str(clone))
    url = f"http://127.0.0.1:{port}/"
    code, _, err = run_cli("remote", "add", "web", url, "--default", cwd=clone)
    assert code == 0, err
    try:
        code, out, err = run_cli(
            "model", "get", "model@v1.0.0", "-o", str(tmp_path / "a"), cwd=clone
        )
        assert code == 0, err
        assert hashlib.md5((tmp_path / "a" / "model.skops").read_bytes()).hexdigest() == md5
    finally:
        server.shutdown()
        server.server_close()
    # Nothing listens there now (the port stays free: bound and not listened on).
    with socket.socket() as hold:
        hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hold.bind(("127.0.0.1", port))
        assert dvc(clone, "pull", "models/model.skops", check=False).returncode == 1
        code, _, err = run_cli("model", "get", "model@v1.0.0", "-o", str(tmp_path / "b"), cwd=clone)
    assert code == errors.REMOTE, err
    assert err.startswith(
        f"error: HTTP remote 'web' ({url}): nothing answers at 127.0.0.1:{port} "
        "(connection refused, 3 tries)"
    ), err
    assert len(err.splitlines()) == 1 and "neither" not in err
    assert not (tmp_path / "b" / "model.skops").exists()


def test_git_tracked_model_registers_and_fetches(trained: Repo, tmp_path: Path) -> None:
    import hashlib

    dvc_yaml = (trained.root / "dvc.yaml").read_text()
    trained.write(
        "dvc.yaml",
        dvc_yaml + "  rules:\n    path: models/rules.json\n    type: model\n",
    )
    trained.write("models/rules.json", '{"threshold": 0.5}\n')
    trained.git("add", "dvc.yaml", "models/rules.json")
    trained.git("commit", "-qm", "a git-tracked model")
    code, out, err = run_cli("model", "register", "rules", "--version", "v1.0.0", cwd=trained.root)
    assert code == 0, err
    blob = trained.git("cat-file", "blob", "rules@v1.0.0:models/rules.json")
    lin = lineage.show(trained.project(), "rules@v1.0.0")
    assert lin.model_md5 == hashlib.md5(blob.encode()).hexdigest() and lin.model_source == "git"
    # a fresh clone with no DVC remote at all: git holds the model
    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(trained.root), str(clone))
    out_dir = str(tmp_path / "o")
    code, stdout, err = run_cli("model", "get", "rules@v1.0.0", "-o", out_dir, cwd=clone)
    assert code == 0, err
    assert (tmp_path / "o" / "rules.json").read_text() == blob
    assert "verified" in stdout


def test_file_inside_a_directory_output(repo: Repo, tmp_path: Path) -> None:
    import hashlib

    from ..conftest import dvc

    repo.write(
        "make.py",
        "from pathlib import Path\n"
        "Path('out').mkdir(exist_ok=True)\n"
        "Path('out/model.bin').write_bytes(bytes(range(256)) * 40)\n"
        "Path('out/vocab.txt').write_text('a\\nb\\n')\n",
    )
    repo.write(
        "dvc.yaml",
        "stages:\n  make:\n    cmd: python make.py\n    deps: [make.py]\n    outs: [out]\n"
        "artifacts:\n  m:\n    path: out/model.bin\n    type: model\n",
    )
    dvc(repo.root, "repro")
    dvc(repo.root, "push")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "directory output")
    registry.register(repo.project(), "m", version="v0.1.0")
    want = hashlib.md5((repo.root / "out/model.bin").read_bytes()).hexdigest()
    assert _dvc_ls_md5(repo.root, "m@v0.1.0", "out/model.bin") == want
    lin = lineage.show(repo.project(), "m@v0.1.0")
    assert lin.model_md5 == want and lin.data["out"].endswith(".dir")
    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(repo.root), str(clone))
    (clone / ".dvc" / "config.local").write_text((repo.root / ".dvc/config.local").read_text())
    code, _, err = run_cli("model", "get", "m@v0.1.0", "-o", str(tmp_path / "o"), cwd=clone)
    assert code == 0, err
    assert (tmp_path / "o" / "model.bin").read_bytes() == (repo.root / "out/model.bin").read_bytes()


def test_model_card_code_spans_are_whole(trained: Repo) -> None:
    from markdown_it import MarkdownIt

    text = (trained.root / "dvc.yaml").read_text()
    trained.write("dvc.yaml", text.replace("desc: Classifier", "desc: Uses ``a`b`` and a"))
    trained.git("commit", "-qam", "describe `train`, with a `` double `` tick")
    registry.register(trained.project(), "model", version="v1.0.0", check_remote=False)
    card = lineage.card(trained.project(), "model@v1.0.0")
    tokens = MarkdownIt("commonmark").enable("table").parse(card)
    spans = []
    texts = []
    for tok in tokens:
        for child in tok.children or []:
            (spans if child.type == "code_inline" else texts).append(child.content)
    assert not [t for t in texts if "`" in t], texts  # every backtick opened a span that closed
    head = trained.head()[:12]
    assert f"git checkout {head} && dvc pull && dvc repro" in spans
    assert "mlopskit model get model@v1.0.0" in spans
    assert "a`b" in spans and "train" in spans and "double" in spans
    assert lineage.code_span("a ``b`` c") == "```a ``b`` c```"
    assert lineage.code_span("`x`") == "`` `x` ``"


def test_artifact_of_a_nested_dvcyaml(repo: Repo, tmp_path: Path) -> None:
    """An artifact declared in sub/dvc.yaml is GTO's ``sub:NAME`` (tags ``sub=NAME@...``):
    register, promote, list, show and get work on it and agree with ``gto show`` and
    ``dvc artifacts get``; its md5 is the outs entry in sub/dvc.lock."""
    import hashlib

    from ..conftest import dvc

    repo.write(
        "sub/make.py",
        "from pathlib import Path\nPath('model.bin').write_bytes(bytes(range(256)) * 24)\n",
    )
    repo.write(
        "sub/dvc.yaml",
        "stages:\n  make:\n    cmd: python make.py\n    deps: [make.py]\n    outs: [model.bin]\n"
        "artifacts:\n  clf:\n    path: model.bin\n    type: model\n    desc: nested one\n",
    )
    dvc(repo.root, "repro", "-P")
    dvc(repo.root, "push")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "a model in sub/dvc.yaml")
    code, out, err = run_cli("model", "register", "sub:clf", "--version", "v0.1.0", cwd=repo.root)
    assert code == 0, err
    code, out, err = run_cli(
        "model", "promote", "sub:clf", "v0.1.0", "--stage", "prod", cwd=repo.root
    )
    assert code == 0, err
    assert sorted(repo.git("tag", "-l").split()) == ["sub=clf#prod#1", "sub=clf@v0.1.0"]
    assert gto_show(repo.root) == {
        "sub:clf": {
            "version": "v0.1.0",
            "stage": {"prod": "v0.1.0"},
            "registered": True,
            "active": True,
        }
    }
    code, out, err = run_cli("model", "list", "--json", cwd=repo.root)
    (row,) = json.loads(out)
    assert row["artifact"] == "sub:clf" and row["stages"] == {"prod": "v0.1.0"}
    want = hashlib.md5((repo.root / "sub/model.bin").read_bytes()).hexdigest()
    lin = lineage.show(repo.project(), "sub:clf#prod")
    assert lin.version == "v0.1.0" and lin.path == "sub/model.bin"
    assert lin.model_md5 == want and lin.description == "nested one"
    assert lin.model_source == "the outs of stage 'sub/dvc.yaml:make' in sub/dvc.lock"
    theirs = tmp_path / "theirs"
    dvc(repo.root, "artifacts", "get", ".", "sub:clf", "--rev", "v0.1.0", "-o", str(theirs))
    code, _, err = run_cli(
        "model", "get", "sub:clf@v0.1.0", "-o", str(tmp_path / "o"), cwd=repo.root
    )
    assert code == 0, err
    assert (tmp_path / "o" / "model.bin").read_bytes() == theirs.read_bytes()
    assert hashlib.md5(theirs.read_bytes()).hexdigest() == want


def test_locate_reads_dvc_lock_as_dvc_does_wdir_and_nested(repo: Repo) -> None:
    """Issue 14: registry.locate reads dvc.lock through dvcfiles.Reader. Its hand-rolled
    walk read only the root dvc.lock with paths as written, so an output of a stage with a
    `wdir`, or of a nested dvc.yaml, was not found (None: 'not tracked')."""
    import yaml

    repo.write(
        "dvc.yaml",
        "stages:\n  build:\n    wdir: sub\n"
        "    cmd: python -c \"open('model.bin','w').write('m')\"\n"
        "    outs:\n      - model.bin\n",
    )
    repo.write(
        "nested/dvc.yaml",
        "stages:\n  inner:\n    cmd: python -c \"open('out.bin','w').write('n')\"\n"
        "    outs:\n      - out.bin\n",
    )
    (repo.root / "sub").mkdir()
    dvc(repo.root, "repro", "-q", "build", "nested/dvc.yaml:inner")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "pipeline")
    lock = yaml.safe_load((repo.root / "dvc.lock").read_text())
    nested = yaml.safe_load((repo.root / "nested/dvc.lock").read_text())
    found = registry.locate(repo.root, "HEAD", "sub/model.bin")
    assert found is not None
    assert (found.md5, found.source, found.where) == (
        lock["stages"]["build"]["outs"][0]["md5"],
        "dvc.lock",
        "build",
    )
    found = registry.locate(repo.root, "HEAD", "nested/out.bin")
    assert found is not None
    assert (found.md5, found.source) == (nested["stages"]["inner"]["outs"][0]["md5"], "dvc.lock")
