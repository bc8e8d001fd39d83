"""Pull requests GitHub gives no secrets, run for real under act: one from a fork, on an
OIDC remote (issue 13, item 7), and one opened by Dependabot in the repository itself
(item 8). Both must get no credentials step, a verdict of "not evaluated" (never
"passed"; the required check fails on that verdict, never on a missing secret), and no
comment: the comment job is for same-repo pull requests by people."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mlopskit import params
from mlopskit.project import Project

from .. import act
from ..act import runner_image_fixture  # noqa: F401  (the runner_image fixture)
from ..conftest import Repo, git
from ..fake_github import State, serve
from ..s3 import S3Server, no_aws_credentials
from .test_act import install, setup_ci  # noqa: F401  (install: the wheel fixture)

pytestmark = pytest.mark.slow

ROLE = "arn:aws:iam::123456789012:role/mlopskit-ct"


def _s3_project(
    trained: Repo,
    origin: Path,
    tmp_path: Path,
    install: str,  # noqa: F811
    s3_server: S3Server,
    *,
    oidc: bool,
) -> Path:
    root = trained.root
    if oidc:
        text = (root / "mlopskit.yaml").read_text()
        text, n = re.subn(
            r"^(    kind: none.*\n)",
            rf"\1    auth: oidc\n    role: {ROLE}\n    region: us-east-1\n",
            text,
            flags=re.M,
        )
        assert n == 1, text
        (root / "mlopskit.yaml").write_text(text)
    clone = setup_ci(
        trained,
        origin,
        tmp_path,
        install,
        kind="s3",
        url=f"s3://{s3_server.bucket()}/store",
        remote_options={"endpointurl": s3_server.endpoint, "region": "us-east-1"},
    )
    git(clone, "checkout", "-q", "-b", "feature")
    params.set_params(Project(root=clone), ["train.C=0.2"])
    git(clone, "commit", "-qam", "try C=0.2")
    return clone


def _run_pr(
    clone: Path,
    artifacts: Path,
    image: act.RunnerImage,
    *,
    head_repo: str,
    actor: str | None = None,
) -> tuple[act.ActRun, State]:
    """pr.yml on a pull request whose head lives in ``head_repo``, with only the
    GITHUB_TOKEN GitHub gives such runs (read-only; no repository secrets)."""
    base = {"full_name": act.REPOSITORY}
    event = {
        "number": 7,
        "pull_request": {
            "number": 7,
            "title": "Try C=0.2",
            "head": {"ref": "feature", "sha": "f" * 40, "repo": {"full_name": head_repo}},
            "base": {"ref": "main", "repo": base},
        },
        "repository": base,
    }
    state = State(repo=act.REPOSITORY, token="test-token")
    with serve(state) as url:
        run = act.run(
            clone,
            "pull_request",
            "pr.yml",
            event,
            artifacts=artifacts,
            secrets={"GITHUB_TOKEN": "test-token"},
            env={"GITHUB_API_URL": url},
            image=image,
            actor=actor,
        )
    return run, state


def _not_evaluated_and_silent(run: act.ActRun, state: State, artifacts: Path) -> None:
    """The verdict is "not evaluated", and that is what fails the required check (as the
    README says: an unevaluated gate is no green gate); nothing else failed but the repro,
    which was allowed to; no comment was posted."""
    assert run.returncode != 0
    failed = re.findall(r"❌  Failure - Main (.+?) \[", run.output)
    assert failed == [
        "Reproduce (pull only; nothing is pushed from a pull request)",
        "Quality gate against the merge base (a failing gate fails this required check)",
    ], failed
    assert run.ran("error: quality gate not evaluated: pull requests from forks get no")
    report = json.loads((artifacts / "mlopskit-report" / "report.json").read_text())
    assert report["verdict"]["state"] == "not evaluated", report["verdict"]
    assert report["passed"] is False
    assert not run.ran("Quality gate passed")
    # The comment job did not run: nothing reached the API.
    assert state.comments == [] and not state.uploads and not state.requests
    assert "[pr/post the report]" not in run.output


def test_a_fork_pr_on_an_oidc_remote_skips_the_credentials_step(
    trained: Repo,
    origin: Path,
    tmp_path: Path,
    install: str,  # noqa: F811
    runner_image: act.RunnerImage,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fork's run gets no OIDC token: the credentials step is skipped (its stand-in fails
    any job that runs it), the repro that follows fails for want of credentials and is
    allowed to, and the verdict is "not evaluated" (the check fails on that, not on a
    missing secret)."""
    no_aws_credentials(monkeypatch, tmp_path)
    clone = _s3_project(trained, origin, tmp_path, install, s3_server, oidc=True)
    pr = (clone / ".github" / "workflows" / "pr.yml").read_text()
    assert "aws-actions/configure-aws-credentials@" in pr  # the step exists for same-repo PRs
    artifacts = tmp_path / "art"
    run, state = _run_pr(clone, artifacts, runner_image, head_repo="mallory/churn")
    _not_evaluated_and_silent(run, state, artifacts)
    assert "configure-aws-credentials stand-in ran" not in run.output
    assert not run.ran("Success - Main AWS credentials")
    assert run.ran("Reproduce (pull only")


def test_a_dependabot_pr_is_treated_like_a_fork(
    trained: Repo,
    origin: Path,
    tmp_path: Path,
    install: str,  # noqa: F811
    runner_image: act.RunnerImage,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Dependabot's pull requests come from the repository itself but get no repository
    secrets: the S3 keys CT reads are empty, the repro fails and is allowed to, the verdict
    is "not evaluated", and no comment is posted (Dependabot's token is read-only)."""
    no_aws_credentials(monkeypatch, tmp_path)
    clone = _s3_project(trained, origin, tmp_path, install, s3_server, oidc=False)
    artifacts = tmp_path / "art"
    run, state = _run_pr(
        clone, artifacts, runner_image, head_repo=act.REPOSITORY, actor="dependabot[bot]"
    )
    _not_evaluated_and_silent(run, state, artifacts)
    assert run.ran("Reproduce (pull only")
