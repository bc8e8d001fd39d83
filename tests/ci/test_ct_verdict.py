"""Issue 13: the CT/PR gate's base and its verdict. "passed" only when this run reproduced
the pipeline and dvc.lock matches; CT compares with the tip before the push; untrusted
report text cannot link, embed or mention; the push token is on no command line."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mlopskit import errors, scm
from mlopskit.formatting import md_escape
from mlopskit.project import Project
from mlopskit.report import load as report_io
from mlopskit.report import render as report_render

from ..conftest import Repo, git, run_cli


def _commit_regression(trained: Repo, drop: float = 0.07) -> tuple[str, str]:
    """A 7-point accuracy drop trained and committed locally: (tip before it, new tip)."""
    before = trained.head()
    path = trained.root / "reports" / "metrics.json"
    values = json.loads(path.read_text())
    values["accuracy"] = round(values["accuracy"] - drop, 6)
    path.write_text(json.dumps(values, indent=2) + "\n")
    trained.git("commit", "-qam", "train locally: worse")
    return before, trained.head()


def test_ct_gate_compares_with_the_tip_before_the_push(trained: Repo) -> None:
    before, _ = _commit_regression(trained)
    # The old CT step: the commit compared with itself passes the drop.
    code, out, _ = run_cli("check", "--base", "HEAD", cwd=trained.root)
    assert code == 0 and "Quality gate passed" in out
    code, out, err = run_cli("check", "--before", before, cwd=trained.root)
    assert code == errors.FAILED, out + err
    assert "accuracy: max_drop 0.05" in err and "FAIL" in out
    assert before[:7] not in out or "dropped by 0.07" in out


@pytest.mark.parametrize("before", ["", "0" * 40, "1234567890abcdef1234567890abcdef12345678"])
def test_ct_gate_without_a_usable_before_uses_the_last_dvc_lock_change(
    trained: Repo, before: str
) -> None:
    """workflow_dispatch (no before), a new branch (all zeros), a before this clone does
    not have: the last commit before HEAD whose dvc.lock changed is the base."""
    from mlopskit.report import gate

    lock_commit = trained.git("log", "-1", "--format=%H", "--", "dvc.lock").strip()
    _commit_regression(trained)
    (trained.root / "NOTES.md").write_text("notes\n")
    trained.git("add", "NOTES.md")
    trained.git("commit", "-qm", "docs")
    assert gate.previous_tip(Project(root=trained.root), before) == lock_commit
    code, _, err = run_cli("check", "--before", before, cwd=trained.root)
    assert code == errors.FAILED and "max_drop" in err


def _no_remote(trained: Repo) -> None:
    text = (trained.root / "mlopskit.yaml").read_text()
    assert "kind: none" in text


def test_no_remote_failed_repro_is_not_evaluated_with_the_fix(trained: Repo) -> None:
    _no_remote(trained)
    code, out, err = run_cli(
        "check", "--repro-outcome", "failure", "--allow-no-rules", cwd=trained.root
    )
    assert code == errors.FAILED
    assert "quality gate not evaluated" in err and "ci.remote.kind: none" in err
    assert "mlopskit remote add" in err and "mlopskit ci generate" in err
    assert "passed" not in out + err
    md = trained.root.parent / "r.md"
    code, _, err = run_cli(
        "report", "--repro-outcome", "failure", "--no-plots", "--out", str(md), cwd=trained.root
    )
    assert code == 0, err
    text = md.read_text()
    assert "**Quality gate not evaluated**" in text and "mlopskit remote add" in text
    assert "Quality gate passed" not in text


@pytest.mark.parametrize(
    ("fork", "outcome", "state", "words"),
    [
        ("true", "failure", "not evaluated", "forks get no credentials"),
        ("true", "skipped", "not evaluated", "forks do not run the pipeline"),
        ("false", "failure", "failed", "did not reproduce the pipeline"),
    ],
)
def test_pr_whose_repro_failed_never_passes(
    trained: Repo, fork: str, outcome: str, state: str, words: str
) -> None:
    text = (trained.root / "mlopskit.yaml").read_text().replace("kind: none", "kind: s3")
    (trained.root / "mlopskit.yaml").write_text(text)
    args = ("--repro-outcome", outcome, "--fork", fork)
    code, out, err = run_cli("check", *args, cwd=trained.root)
    assert code == errors.FAILED
    assert f"quality gate {state}" in err and words in err
    folder = trained.root.parent / "rep"
    folder.mkdir()
    code, _, err = run_cli(
        "report", *args, "--format", "json", "--out", str(folder / "report.json"),
        "--no-plots", cwd=trained.root,
    )  # fmt: skip
    assert code == 0, err
    data = json.loads((folder / "report.json").read_text())
    assert data["passed"] is False and data["verdict"]["state"] == state
    # What the comment job posts, from the untrusted upload: the same verdict.
    body = report_render.markdown(report_io.load_untrusted(folder))
    assert "Quality gate passed" not in body
    assert ("not evaluated" if state == "not evaluated" else "Quality gate failed") in body


def test_stale_dvc_lock_after_repro_fails_and_success_passes(trained: Repo) -> None:
    code, out, err = run_cli("check", "--repro-outcome", "success", cwd=trained.root)
    assert code == 0 and "Quality gate passed" in out, err
    from mlopskit import params

    params.set_params(Project(root=trained.root), ["train.C=0.5"])
    code, _, err = run_cli("check", "--repro-outcome", "success", cwd=trained.root)
    assert code == errors.FAILED
    assert "quality gate failed" in err and "dvc.lock does not match" in err
    out_md = trained.root.parent / "r.md"
    run_cli("report", "--repro-outcome", "success", "--no-plots", "--out", str(out_md),
            cwd=trained.root)  # fmt: skip
    text = out_md.read_text()
    assert "Quality gate failed" in text and "dvc.lock: **out of date**" in text
    assert "Quality gate passed" not in text


def test_untrusted_text_cannot_link_embed_or_mention() -> None:
    hostile = (
        "see [here](https://evil.test) ![x](https://evil.test/p.png) @octocat #12 www.evil.test"
    )
    out = md_escape(hostile)
    assert "](" not in out.replace("\\](", "")  # every bracket is escaped
    assert "\\[here\\]" in out and "\\!\\[x\\]" in out
    assert "@octocat" not in out and "@\u200boctocat" in out
    assert "#12" not in out and "https://" not in out and "www." not in out


def test_the_push_token_is_on_no_command_line(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "ghp_supersecret123"
    monkeypatch.setenv("GITHUB_TOKEN", token)
    repo.git("remote", "add", "gh", "https://github.test/acme/churn.git")
    args = scm.auth_args(repo.root, "gh")
    assert args and not any(token in a for a in args)
    # git itself gets the token from the helper, out of the environment it inherits.
    res = subprocess.run(
        ["git", *args, "credential", "fill"],
        input="protocol=https\nhost=github.test\npath=acme/churn.git\n\n",
        capture_output=True,
        text=True,
        cwd=repo.root,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        check=True,
    )
    assert f"password={token}" in res.stdout and "username=x-access-token" in res.stdout
    # another host gets nothing from it
    other = subprocess.run(
        ["git", *args, "credential", "fill"],
        input="protocol=https\nhost=other.test\n\n",
        capture_output=True,
        text=True,
        cwd=repo.root,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"},
        check=False,
    )
    assert token not in other.stdout


def test_commit_step_leaves_a_moved_branch_to_the_newer_run(tmp_path: Path) -> None:
    """The CT commit step's reaction to `commit --push` exit 4 "main moved with pipeline
    changes: retrain" (another run retrains on the newest tip): nothing committed, the
    step succeeds with a notice; any other exit 4 still fails the step. The step's script
    runs as GitHub runs it (bash -e), with `mlopskit` standing for the command's contract."""
    import re

    from mlopskit import yamlio
    from mlopskit.ci import workflows

    root = tmp_path / "p"
    git(tmp_path, "init", "-q", "-b", "main", str(root))
    (root / ".dvc").mkdir()
    (root / "mlopskit.yaml").write_text(
        "ci:\n  install: git+https://x.test/m.git@" + "1" * 40 + "\n  remote:\n    kind: s3\n"
    )
    files = workflows.render(Project(root=root))
    doc = yamlio.loads(files[".github/workflows/ct.yml"], display="ct.yml")
    (step,) = [s for s in doc["jobs"]["train"]["steps"] if "mlopskit commit" in s.get("run", "")]
    assert re.search(r'-m "ct: retrain on \$\{GITHUB_SHA::8\} \[skip ci\]"', step["run"])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for message, expected in (
        ("error: `main` moved with pipeline changes: retrain", 0),
        ("error: could not reach origin", 4),
    ):
        (bin_dir / "mlopskit").write_text(f"#!/bin/sh\necho '{message}' >&2\nexit 4\n")
        (bin_dir / "mlopskit").chmod(0o755)
        summary = tmp_path / "summary.md"
        summary.write_text("")
        res = subprocess.run(
            ["bash", "-e", "-c", step["run"]],
            env={
                "PATH": f"{bin_dir}:{os.environ['PATH']}",
                "RUNNER_TEMP": str(tmp_path),
                "GITHUB_STEP_SUMMARY": str(summary),
                "GITHUB_SHA": "a" * 40,
            },
            capture_output=True,
            text=True,
            check=False,
        )
        assert res.returncode == expected, res.stderr
        assert message in res.stderr  # the command's own words are shown
        if expected == 0:
            assert "::notice title=Not committed" in res.stdout
            assert "Not committed" in summary.read_text()
        else:
            assert summary.read_text() == ""


def test_a_hostile_uploaded_report_posts_no_link_image_or_mention(trained: Repo) -> None:
    folder = trained.root.parent / "rep"
    folder.mkdir()
    code, _, err = run_cli(
        "report", "--format", "json", "--out", str(folder / "report.json"), "--no-plots",
        cwd=trained.root,
    )  # fmt: skip
    assert code == 0, err
    data = json.loads((folder / "report.json").read_text())
    evil = "@octocat ![x](https://evil.test/a.png) [click](https://evil.test) www.evil.test"
    data["lineage"]["subject"] = evil
    data["notes"] = [evil]
    data["lineage"]["data"] = {"data/raw/data.csv": "@octocat12"}
    (folder / "report.json").write_text(json.dumps(data))
    body = report_render.markdown(report_io.load_untrusted(folder))
    assert "@octocat" not in body and "](http" not in body.replace("\\](", "")
    assert "https://evil" not in body and "www.evil" not in body
    assert "\\!\\[x\\]" in body  # shown as text
