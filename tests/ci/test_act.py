"""The generated workflows, run for real with act against a bare `origin`, a local DVC
remote (and once an SSH remote), and a local stand-in for GitHub's REST API."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlopskit import params, remote
from mlopskit.ci import workflows
from mlopskit.project import Project

from .. import act
from ..act import (
    installed_fresh,  # noqa: F401  (also imported from here)
    runner_image_fixture,  # noqa: F401  (the runner_image fixture)
)
from ..conftest import Repo, dvc, git, run_cli
from ..fake_github import State, serve
from ..s3 import S3Server, no_aws_credentials

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def install(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ci.install for every run: a wheel of this checkout, served on 127.0.0.1."""
    with act.wheel_server(tmp_path_factory.mktemp("wheel")) as url:
        yield url


def remote_objects(path: Path) -> set[str]:
    return {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}


def setup_ci(
    trained: Repo,
    origin: Path,
    tmp_path: Path,
    install: str | None,
    *,
    kind: str = "local",
    url: str | None = None,
    gates: str | None = None,
    remote_options: dict[str, str] | None = None,
) -> Path:
    """Commit a CI-ready project (remote in .dvc/config, ci.remote.kind, ci.install) and
    clone it. ``install=None`` leaves ci.install unset, as `init` does from an editable
    install."""
    root = trained.root
    (root / ".dvc" / "config.local").unlink()
    project = Project(root=root)
    remote.add(project, "storage", url or str(trained.remote), default=True)
    for key, value in (remote_options or {}).items():  # not secrets: committed
        dvc(root, "remote", "modify", "storage", key, value)
    text = (root / "mlopskit.yaml").read_text().replace("kind: none", f"kind: {kind}")
    if gates is not None:
        text = re.sub(r"gates:\n(  - .*\n)+", f"gates:\n{gates}", text)
    if install is not None:
        text, n = re.subn(r"^ci:\n", f"ci:\n  install: {install}\n", text, flags=re.M)
        assert n == 1, text
    (root / "mlopskit.yaml").write_text(text)
    workflows.generate(Project(root=root), force=True, require_install=install is not None)
    return act.publish(trained.root, origin, tmp_path, "ci: configure the DVC remote for CI")


def push_event(message: str) -> dict[str, object]:
    return {"ref": "refs/heads/main", "head_commit": {"message": message}}


def run_ct(
    clone: Path, message: str, tmp_path: Path, *, image: act.RunnerImage | None = None
) -> act.ActRun:
    """ct.yml on a push to main, as GitHub would start it (on fresh runners, or on the
    runner ``image``)."""
    return act.run(
        clone,
        "push",
        "ct.yml",
        push_event(message),
        artifacts=tmp_path / "art",
        secrets={"GITHUB_TOKEN": "test-token"},
        image=image,
    )


def run_pr(
    clone: Path,
    title: str,
    artifacts: Path,
    *,
    image: act.RunnerImage | None = None,
    secrets: dict[str, str] | None = None,
    server_url: bool = False,
) -> tuple[act.ActRun, State]:
    """pr.yml on a pull request titled ``title``, against the fake GitHub API; the run
    and what the API received (comments, uploads)."""
    state = State(repo=act.REPOSITORY, token="test-token")
    with serve(state) as url:
        env = {"GITHUB_API_URL": url}
        if server_url:
            env["GITHUB_SERVER_URL"] = "https://github.test"
        run = act.run(
            clone,
            "pull_request",
            "pr.yml",
            _pr_event(title),
            artifacts=artifacts,
            secrets=secrets or {"GITHUB_TOKEN": "test-token"},
            env=env,
            image=image,
        )
    return run, state


def act_workspaces() -> list[Path]:
    import os

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return list((cache / "act").glob("*/hostexecutor"))


def test_params_change_on_main_retrains_stores_and_commits(
    trained: Repo, origin: Path, tmp_path: Path, install: str
) -> None:
    clone = setup_ci(trained, origin, tmp_path, install)
    params.set_params(Project(root=clone), ["train.C=0.3"])
    git(clone, "commit", "-qam", "try C=0.3")
    git(clone, "push", "-q", "origin", "main")
    pushed = git(origin, "rev-parse", "main").strip()
    before = remote_objects(trained.remote)

    run = run_ct(clone, "try C=0.3", tmp_path)
    assert run.returncode == 0, run.output[-6000:]
    installed_fresh(run, install, jobs=1)
    assert re.search(r"Successfully installed .*\bdvc-3\.", run.output)  # from the index
    assert run.ran("Running stage 'train'") and run.ran("Running stage 'evaluate'")

    log = git(origin, "log", "--format=%H %s", "-2", "main").splitlines()
    assert log[1].split()[0] == pushed  # exactly one new commit on origin/main
    assert re.fullmatch(r"[0-9a-f]{40} ct: retrain on [0-9a-f]{8} \[skip ci\]", log[0])
    files = set(git(origin, "show", "--name-only", "--format=", "main").split())
    assert {"dvc.lock", "reports/metrics.json"} <= files
    assert files <= {
        "dvc.lock",
        "reports/metrics.json",
        "reports/plots/confusion.csv",
        "reports/plots/roc.csv",
    }
    lock = git(origin, "show", "main:dvc.lock")
    assert "train.C: 0.3" in lock
    model_md5 = re.search(r"path: models/model.skops\n\s+hash: md5\n\s+md5: (\w+)", lock)
    assert model_md5 is not None
    after = remote_objects(trained.remote)
    md5 = model_md5.group(1)
    assert f"files/md5/{md5[:2]}/{md5[2:]}" in after - before


def test_docs_only_commit_retrains_nothing_and_moves_no_data(
    trained: Repo, origin: Path, tmp_path: Path, install: str, runner_image: act.RunnerImage
) -> None:
    clone = setup_ci(trained, origin, tmp_path, install)
    (clone / "docs").mkdir()
    (clone / "docs" / "index.md").write_text("# docs\n")
    git(clone, "add", "docs")
    git(clone, "commit", "-qm", "docs only")
    git(clone, "push", "-q", "origin", "main")
    head = git(origin, "rev-parse", "main")
    before = remote_objects(trained.remote)
    # On GitHub the paths filter keeps ct.yml from starting at all for this commit
    # (checked in test_workflows); act ignores paths filters, so the job runs here and
    # must find nothing to do.
    run = run_ct(clone, "docs only", tmp_path, image=runner_image)
    assert run.returncode == 0, run.output[-6000:]
    assert not run.ran("Running stage")
    assert run.ran("Pipeline is up to date.") and run.ran("No changes to commit.")
    assert git(origin, "rev-parse", "main") == head
    assert remote_objects(trained.remote) == before
    for ws in act_workspaces():
        cache = ws / ".dvc" / "cache"
        assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*")), ws


def _pr_event(title: str, number: int = 5) -> dict[str, object]:
    repo = {"full_name": act.REPOSITORY}
    return {
        "number": number,
        "pull_request": {
            "number": number,
            "title": title,
            "head": {"ref": "feature", "sha": "f" * 40, "repo": repo},
            "base": {"ref": "main", "repo": repo},
        },
        "repository": repo,
    }


def _open_pr(clone: Path, change: str) -> None:
    git(clone, "checkout", "-q", "-b", "feature")
    params.set_params(Project(root=clone), [change])
    git(clone, "commit", "-qam", f"try {change}")


def test_pull_request_report_gate_and_comment(
    trained: Repo, origin: Path, tmp_path: Path, install: str
) -> None:
    clone = setup_ci(
        trained,
        origin,
        tmp_path,
        install,
        gates="  - accuracy >= 0.5\n  - 'accuracy: max_drop 0.05'\n",
    )
    _open_pr(clone, "train.C=0.2")
    run, state = run_pr(clone, "Try C=0.2", tmp_path / "art", server_url=True)
    assert run.returncode == 0, run.output[-6000:]
    installed_fresh(run, install, jobs=2)  # report, and comment (which checks out nothing)
    assert run.ran("Quality gate passed")
    report = json.loads((tmp_path / "art" / "mlopskit-report" / "report.json").read_text())
    assert [p["key"] for p in report["params"]] == ["train.C"]
    assert report["passed"] is True
    (comment,) = state.comments
    assert comment["body"].startswith("<!-- mlopskit-report -->")
    assert "✅ **Quality gate passed**" in comment["body"]
    assert "| train.C | 1 | 0.2 | modified |" in comment["body"]
    assert "/raw/" in comment["body"] and "confusion_matrix-head.png" in comment["body"]
    assert any(p.endswith("/git/refs") for _, p, _ in state.requests)


def test_failing_gate_fails_the_pr_job_and_hostile_title_runs_nothing(
    trained: Repo, origin: Path, tmp_path: Path, install: str, runner_image: act.RunnerImage
) -> None:
    clone = setup_ci(trained, origin, tmp_path, install, gates="  - accuracy >= 0.999\n")
    _open_pr(clone, "train.C=0.01")
    title = 'Improve $(touch pwned) `touch pwned2` "; touch pwned3; #'
    run, state = run_pr(clone, title, tmp_path / "art", image=runner_image)
    assert run.returncode != 0
    assert run.ran("quality gate failed")
    (comment,) = state.comments  # the report is still posted, with the verdict
    assert "❌ **Quality gate failed**: `accuracy >= 0.999`" in comment["body"]
    for where in [clone, tmp_path, *act_workspaces()]:
        for name in ("pwned", "pwned2", "pwned3"):
            assert not (where / name).exists(), where / name


@pytest.mark.ssh
def test_ct_over_an_ssh_remote(
    trained: Repo, origin: Path, tmp_path: Path, install: str, runner_image: act.RunnerImage
) -> None:
    import getpass

    from .. import sshd

    with sshd.running(tmp_path / "sshd") as server:
        remote_dir = tmp_path / "ssh-remote"
        remote_dir.mkdir()
        url = f"ssh://{getpass.getuser()}@127.0.0.1:{server.port}{remote_dir}"
        clone = setup_ci(trained, origin, tmp_path, install, kind="ssh", url=url)
        params.set_params(Project(root=clone), ["train.C=0.4"])
        git(clone, "commit", "-qam", "try C=0.4")
        git(clone, "push", "-q", "origin", "main")
        # The raw data must be in the SSH remote too: seed it from the local one.
        import shutil

        shutil.copytree(trained.remote, remote_dir, dirs_exist_ok=True)
        run = act.run(
            clone,
            "push",
            "ct.yml",
            push_event("try C=0.4"),
            artifacts=tmp_path / "art",
            secrets={"GITHUB_TOKEN": "t", "DVC_SSH_KEY": server.client_key.read_text()},
            image=runner_image,
        )
    assert run.returncode == 0, run.output[-6000:]
    lock = git(origin, "show", "main:dvc.lock")
    assert "train.C: 0.4" in lock
    md5 = re.search(r"path: models/model.skops\n\s+hash: md5\n\s+md5: (\w+)", lock)
    assert md5 is not None
    assert (remote_dir / "files" / "md5" / md5.group(1)[:2] / md5.group(1)[2:]).is_file()


def test_deploy_workflow_unassignment_is_a_no_op_and_a_stale_assignment_stands_down(
    trained: Repo, origin: Path, tmp_path: Path, install: str
) -> None:
    """An unassignment tag (NAME#STAGE!#N, which the old `**#*` filter took for a deploy)
    runs the event job and succeeds doing nothing; an assignment dispatched after a newer
    event of its stage (workflow_dispatch, as `model promote` sends it) deploys nothing."""
    from mlopskit.registry import tags as registry

    clone = setup_ci(trained, origin, tmp_path, install)
    (clone / ".dvc" / "config.local").unlink(missing_ok=True)
    project = Project(root=clone)
    registry.register(project, "model", version="v1.0.0")
    promoted = registry.promote(project, "model", "v1.0.0", "prod")
    un = registry.unpromote(project, "model", "prod")
    deploy_sh = clone / "deploy" / "deploy.sh"
    deploy_sh.write_text(deploy_sh.read_text() + 'cp "$model_file" "$DEPLOYED_TO/"\n')
    deployed = tmp_path / "deployed"
    deployed.mkdir()
    state = State(repo=act.REPOSITORY, token="test-token")
    with serve(state) as url:
        run = act.run(
            clone,
            "push",
            "deploy.yml",
            {"ref": f"refs/tags/{un.tag}", "ref_name": un.tag},
            artifacts=tmp_path / "art",
            secrets={"GITHUB_TOKEN": "test-token"},
            env={
                "GITHUB_API_URL": url,
                "GITHUB_REF_NAME": un.tag,
                "GITHUB_REF": f"refs/tags/{un.tag}",
                "DEPLOYED_TO": str(deployed),
            },
        )
        assert run.returncode == 0, run.output[-6000:]
        installed_fresh(run, install, jobs=1)  # the event job only
        assert run.ran(f"{un.tag}: unassignment: nothing to deploy (no deploy/on-event.sh)")
        assert not run.ran("Fetch the model and verify its md5")  # the deploy job is skipped
        assert list(deployed.iterdir()) == [] and state.releases == []
        stale = act.run(
            clone,
            "workflow_dispatch",
            "deploy.yml",
            {"inputs": {"tag": promoted.tag}},
            artifacts=tmp_path / "art2",
            secrets={"GITHUB_TOKEN": "test-token"},
            env={"GITHUB_API_URL": url, "DEPLOYED_TO": str(deployed)},
        )
    assert stale.returncode == 0, stale.output[-6000:]
    installed_fresh(stale, install, jobs=2)
    assert stale.ran(f"{promoted.tag}: assignment: deploying")
    assert stale.ran(f"{promoted.tag}: a newer assignment or unassignment of this stage came")
    assert list(deployed.iterdir()) == [] and state.releases == [] and state.uploads == {}
    # with deploy/on-event.sh, a non-assignment event runs it (read-only job), deploying nothing
    hook = clone / "deploy" / "on-event.sh"
    hook.write_text('#!/usr/bin/env bash\necho "$@" > "$DEPLOYED_TO/event.txt"\n')
    registration = "model@v1.0.0"
    run = act.run(
        clone,
        "push",
        "deploy.yml",
        {"ref": f"refs/tags/{registration}", "ref_name": registration},
        artifacts=tmp_path / "art3",
        secrets={"GITHUB_TOKEN": "test-token"},
        env={
            "GITHUB_REF_NAME": registration,
            "GITHUB_REF": f"refs/tags/{registration}",
            "DEPLOYED_TO": str(deployed),
        },
    )
    assert run.returncode == 0, run.output[-6000:]
    installed_fresh(run, install, jobs=1)  # event; the hook job installs nothing
    assert run.ran(f"{registration}: registration: running deploy/on-event.sh")
    assert (deployed / "event.txt").read_text() == "registration model v1.0.0 \n"
    assert [p.name for p in deployed.iterdir()] == ["event.txt"] and state.releases == []


def test_sweep_matrix_fans_out_and_collects(
    trained: Repo, origin: Path, tmp_path: Path, install: str
) -> None:
    clone = setup_ci(trained, origin, tmp_path, install)
    event = {"inputs": {"grid": "train.C=0.3,3", "random": "0"}}
    run = act.run(
        clone,
        "workflow_dispatch",
        "sweep.yml",
        event,
        artifacts=tmp_path / "art",
        secrets={"GITHUB_TOKEN": "test-token"},
    )
    assert run.returncode == 0, run.output[-8000:]
    installed_fresh(run, install, jobs=4)  # plan, two points, collect
    refs = git(origin, "for-each-ref", "--format=%(refname)", "refs/exps").split()
    names = sorted(r.rsplit("/", 1)[1] for r in refs)
    assert len(names) == 2 and all(n.startswith("sweep-") for n in names), refs
    assert run.ran("## Sweep results") and run.ran("| experiment | rev | train.C |")
    for name in names:
        # experiments sit under their baseline row, drawn as a tree (as `dvc exp show`)
        assert re.search(rf"\| (?:[├└]── )?{name} \| [0-9a-f]{{7}} \| (0\.3|3) \|", run.output), (
            name
        )
    # a hostile grid is refused by the plan job, and nothing runs
    bad = act.run(
        clone,
        "workflow_dispatch",
        "sweep.yml",
        {"inputs": {"grid": "train.C=1 $(touch pwned)", "random": "0"}},
        artifacts=tmp_path / "art2",
        secrets={"GITHUB_TOKEN": "test-token"},
    )
    installed_fresh(bad, install, jobs=1)  # plan refuses it
    assert bad.returncode != 0
    assert not (clone / "pwned").exists()
    assert not any((ws / "pwned").exists() for ws in act_workspaces())


@pytest.mark.parametrize("drifted", [True, False])
def test_monitor_dispatches_retraining_only_on_drift(
    trained: Repo,
    origin: Path,
    tmp_path: Path,
    install: str,
    runner_image: act.RunnerImage,
    drifted: bool,
) -> None:
    import numpy as np
    import pandas as pd

    from mlopskit import data

    raw = pd.read_csv(trained.root / "data" / "raw" / "data.csv")
    rng = np.random.default_rng(7)
    current = raw.sample(n=len(raw), replace=True, random_state=7).reset_index(drop=True)
    if drifted:
        sd = raw["mean radius"].std()
        current["mean radius"] = current["mean radius"] + 1.5 * sd
        current["worst area"] = current["worst area"] * rng.uniform(1.8, 2.2, len(current))
    prod = trained.root / "data" / "production" / "current.csv"
    prod.parent.mkdir(parents=True)
    current.to_csv(prod, index=False)
    data.add(trained.project(), ["data/production/current.csv"])
    data.push(trained.project())
    text = (
        (trained.root / "mlopskit.yaml")
        .read_text()
        .replace(
            "  # current: data/production/current.csv", "  current: data/production/current.csv"
        )
    )
    (trained.root / "mlopskit.yaml").write_text(text)
    clone = setup_ci(trained, origin, tmp_path, install)
    assert (clone / ".github" / "workflows" / "monitor.yml").is_file()
    state = State(repo=act.REPOSITORY, token="test-token")
    with serve(state) as url:
        run = act.run(
            clone,
            "workflow_dispatch",
            "monitor.yml",
            {"inputs": {}},
            artifacts=tmp_path / "art",
            secrets={"GITHUB_TOKEN": "test-token"},
            env={"GITHUB_API_URL": url},
            image=runner_image,
        )
    assert run.returncode == 0, run.output[-6000:]
    if drifted:
        assert state.dispatches == [("retrain.yml", {"ref": "main"})]
        assert run.ran("mean radius")
        report = tmp_path / "art" / "drift-report"
        assert (report / "drift.md").is_file() and (report / "drift.png").is_file()
    else:
        assert state.dispatches == []


def test_workflows_without_a_known_mlopskit_source_fail_with_the_fix(
    trained: Repo, origin: Path, tmp_path: Path, runner_image: act.RunnerImage
) -> None:
    """What `init` writes from an editable install: the job stops at installing mlopskit,
    naming ci.install, instead of installing something else."""
    clone = setup_ci(trained, origin, tmp_path, None)
    run = act.run(
        clone,
        "push",
        "ci.yml",
        push_event("anything"),
        artifacts=tmp_path / "art",
        image=runner_image,
    )
    assert run.returncode != 0
    # (act may drop the output of a step that ends this quickly: the step's own line
    # carries the fix; the ::error text is checked in test_workflows)
    assert run.ran("Failure - Main Install mlopskit (no source known; set ci.install)")
    assert not run.ran("Validate dvc.yaml")  # nothing after the install step ran


def test_quick_runs_see_the_runner_image_not_the_test_interpreter(
    trained: Repo, origin: Path, tmp_path: Path, install: str, runner_image: act.RunnerImage
) -> None:
    """The runner image holds what the workflows install (requirements.txt, mlopskit's
    dependencies with DVC's S3 plugin), from the index, and nothing of the test
    interpreter's: not mlopskit, not pytest or moto. So a project whose code imports a
    package its requirements.txt does not list (pytest here, which the test interpreter
    has) fails CT in a quick run too, as on GitHub."""
    import subprocess
    from importlib import metadata

    code = (
        "import importlib.util as u\n"
        "for m in ('dvc', 'dvc_s3', 'sklearn', 'gto', 'pytest', 'moto', 'mlopskit'):\n"
        "    print(m, u.find_spec(m) is not None)"
    )
    found = subprocess.run(
        [str(runner_image.root / "bin" / "python"), "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=act._runner_env(),
        cwd=tmp_path,
    ).stdout.split("\n")
    assert found[:-1] == [
        "dvc True",
        "dvc_s3 True",
        "sklearn True",
        "gto True",
        "pytest False",
        "moto False",
        "mlopskit False",
    ]
    # pinned as the project's requirements.txt pins it (what `init` wrote)
    assert f"dvc=={metadata.version('dvc')}" in runner_image.requirements

    clone = setup_ci(trained, origin, tmp_path, install)
    train = clone / "src" / "train.py"
    train.write_text(
        train.read_text().replace(
            "import pandas as pd\n", "import pytest\nimport pandas as pd\n", 1
        )
    )
    params.set_params(Project(root=clone), ["train.C=0.3"])
    git(clone, "commit", "-qam", "train imports a package requirements.txt does not list")
    git(clone, "push", "-q", "origin", "main")
    head = git(origin, "rev-parse", "main")

    run = run_ct(clone, "imports pytest", tmp_path, image=runner_image)
    assert run.returncode != 0, run.output[-6000:]
    assert run.ran(f"on the runner image {runner_image.site}")
    assert run.ran("Running stage 'train'")
    assert run.ran("ModuleNotFoundError: No module named 'pytest'"), run.output[-6000:]
    assert not run.ran("Running stage 'evaluate'")
    assert git(origin, "rev-parse", "main") == head  # nothing committed


def test_the_default_install_is_the_wheel_mlopskit_was_installed_from(
    install: str, tmp_path: Path
) -> None:
    """pip's own PEP 610 record of a wheel installed from a URL gives back that URL and
    its sha256: what `ci generate` writes when ci.install is not set."""
    import subprocess
    import sys

    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", str(venv)], check=True)
    env = act._runner_env()
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", install],
        check=True,
        env=env,
        capture_output=True,
    )
    code = "from mlopskit.ci import workflows; print(*workflows.installed_source(), sep='|')"
    res = subprocess.run(
        [python, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert res.stdout.strip() == f"{install}|"


def test_ct_of_a_project_in_a_subfolder_of_the_repository(
    trained: Repo, origin: Path, tmp_path: Path, install: str, runner_image: act.RunnerImage
) -> None:
    """A monorepo: the trained project moved into ml/churn of a bigger repository; its
    ct workflow (at the repository root) retrains in that folder and commits back."""
    import shutil

    top = tmp_path / "mono"
    sub = top / "ml" / "churn"
    shutil.copytree(
        trained.root, sub, ignore=shutil.ignore_patterns(".git", "cache", "tmp", ".github")
    )
    (top / "README.md").write_text("# a monorepo\n")
    git(top, "init", "-q", "-b", "main")
    (sub / ".dvc" / "config.local").unlink()
    remote.add(Project(root=sub), "storage", str(trained.remote), default=True)
    text = (sub / "mlopskit.yaml").read_text().replace("kind: none", "kind: local")
    text = re.sub(r"^ci:\n", f"ci:\n  install: {install}\n", text, flags=re.M)
    (sub / "mlopskit.yaml").write_text(text)
    res = workflows.generate(Project(root=sub))
    assert ".github/workflows/ct-ml-churn.yml" in res.written
    git(top, "add", "-A")
    git(top, "commit", "-qm", "a monorepo with one ML project")
    git(top, "remote", "add", "origin", str(origin))
    git(top, "push", "-q", "-u", "origin", "main")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    act.prepare_clone(clone)
    params.set_params(Project(root=clone / "ml" / "churn"), ["train.C=0.3"])
    git(clone, "commit", "-qam", "try C=0.3")
    git(clone, "push", "-q", "origin", "main")
    run = act.run(
        clone,
        "push",
        "ct-ml-churn.yml",
        push_event("try C=0.3"),
        artifacts=tmp_path / "art",
        secrets={"GITHUB_TOKEN": "test-token"},
        image=runner_image,
    )
    assert run.returncode == 0, run.output[-6000:]
    assert run.ran("Running stage 'train'")
    log = git(origin, "log", "--format=%s", "-2", "main").splitlines()
    assert log[0].startswith("ct: retrain on ") and log[1] == "try C=0.3"
    files = set(git(origin, "show", "--name-only", "--format=", "main").split())
    assert "ml/churn/dvc.lock" in files and all(f.startswith("ml/churn/") for f in files)
    assert "train.C: 0.3" in git(origin, "show", "main:ml/churn/dvc.lock")


def test_ct_without_a_reachable_remote_reports_not_evaluated_and_the_fix(
    trained: Repo, origin: Path, tmp_path: Path, install: str, runner_image: act.RunnerImage
) -> None:
    """The quickstart default (ci.remote.kind: none): the fresh checkout has no DVC-tracked
    data, repro fails, and the summary says 'not evaluated' with the fix, never 'passed'."""
    clone = setup_ci(trained, origin, tmp_path, install, kind="none")
    head = git(origin, "rev-parse", "main")
    run = run_ct(clone, "anything", tmp_path, image=runner_image)
    assert run.returncode != 0
    assert run.ran("Quality gate not evaluated") and run.ran("ci.remote.kind: none")
    assert run.ran("mlopskit remote add") and run.ran("mlopskit ci generate")
    assert not run.ran("Quality gate passed")
    assert git(origin, "rev-parse", "main") == head  # nothing committed


def test_ct_gates_against_the_push_events_before(
    trained: Repo, origin: Path, tmp_path: Path, install: str, runner_image: act.RunnerImage
) -> None:
    """The previous tip (github.event.before) had accuracy 0.07 higher than the pushed
    commit's committed, reproducible metrics: the gate fails (comparing the commit with
    itself, as `--base HEAD` did, passed it), and nothing is committed."""
    clone = setup_ci(trained, origin, tmp_path, install, gates="  - 'accuracy: max_drop 0.05'\n")
    path = clone / "reports" / "metrics.json"
    real = path.read_text()
    better = json.loads(real)
    better["accuracy"] = round(better["accuracy"] + 0.07, 6)
    path.write_text(json.dumps(better, indent=2) + "\n")
    git(clone, "commit", "-qam", "the previous tip")
    before = git(clone, "rev-parse", "HEAD").strip()
    path.write_text(real)
    git(clone, "commit", "-qam", "worse model, committed locally")
    git(clone, "push", "-q", "origin", "main")
    head = git(origin, "rev-parse", "main")
    event = {**push_event("worse model"), "before": before}
    run = act.run(
        clone,
        "push",
        "ct.yml",
        event,
        artifacts=tmp_path / "art",
        secrets={"GITHUB_TOKEN": "test-token"},
        image=runner_image,
    )
    assert run.returncode != 0, run.output[-4000:]
    assert run.ran("quality gate failed") and run.ran("dropped by 0.07")
    assert not run.ran("Quality gate passed")
    assert git(origin, "rev-parse", "main") == head


def test_pr_whose_repro_fails_is_never_passed(
    trained: Repo, origin: Path, tmp_path: Path, install: str, runner_image: act.RunnerImage
) -> None:
    """A same-repository pull request whose remote cannot be reached: the job is red and
    the posted comment says the gate failed (the committed metrics are no evidence)."""
    clone = setup_ci(trained, origin, tmp_path, install, url=str(tmp_path / "unreachable"))
    _open_pr(clone, "train.C=0.2")
    run, state = run_pr(clone, "Try C=0.2", tmp_path / "art", image=runner_image)
    assert run.returncode != 0
    report = json.loads((tmp_path / "art" / "mlopskit-report" / "report.json").read_text())
    assert report["passed"] is False and report["verdict"]["state"] == "failed"
    assert report["repro"] == "failure"
    (comment,) = state.comments
    assert "❌ **Quality gate failed**: this run did not reproduce the pipeline" in comment["body"]
    assert "Quality gate passed" not in comment["body"] and not run.ran("Quality gate passed")


def test_ct_on_an_s3_remote_with_credentials_from_secrets(
    trained: Repo,
    origin: Path,
    tmp_path: Path,
    install: str,
    runner_image: act.RunnerImage,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ci.remote.kind: s3, auth: secrets, against a real S3-compatible server (moto) on
    127.0.0.1: the endpoint is in the committed .dvc/config, the keys reach the job only
    as act secrets; CT pulls from the bucket, stores the new model there and commits back,
    and the secret is in no output and no committed file."""
    from ..data.test_s3 import no_secret_anywhere
    from ..s3 import KEY_ID, SECRET

    no_aws_credentials(monkeypatch, tmp_path)  # the job's keys come from secrets only
    bucket = s3_server.bucket()
    clone = setup_ci(
        trained,
        origin,
        tmp_path,
        install,
        kind="s3",
        url=f"s3://{bucket}/store",
        remote_options={"endpointurl": s3_server.endpoint, "region": "us-east-1"},
    )
    ct = (clone / ".github" / "workflows" / "ct.yml").read_text()
    assert "AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET_ACCESS_KEY }}" in ct
    # The developer's push of the trained project's data, with their own keys.
    with monkeypatch.context() as m:
        m.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
        m.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        code, out, err = run_cli("data", "push", cwd=trained.root)
    assert code == 0, err
    before = set(s3_server.keys(bucket))
    assert before
    params.set_params(Project(root=clone), ["train.C=0.6"])
    git(clone, "commit", "-qam", "try C=0.6")
    git(clone, "push", "-q", "origin", "main")
    pushed = git(origin, "rev-parse", "main").strip()

    run = act.run(
        clone,
        "push",
        "ct.yml",
        push_event("try C=0.6"),
        artifacts=tmp_path / "art",
        secrets={
            "GITHUB_TOKEN": "test-token",
            "AWS_ACCESS_KEY_ID": KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
        },
        image=runner_image,
    )
    assert run.returncode == 0, run.output[-6000:]
    assert run.ran("Running stage 'train'")
    log = git(origin, "log", "--format=%H %s", "-2", "main").splitlines()
    assert log[1].split()[0] == pushed  # exactly one new commit on origin/main
    assert re.fullmatch(r"[0-9a-f]{40} ct: retrain on [0-9a-f]{8} \[skip ci\]", log[0])
    assert "dvc.lock" in git(origin, "show", "--name-only", "--format=", "main").split()
    lock = git(origin, "show", "main:dvc.lock")
    assert "train.C: 0.6" in lock
    found = re.search(r"path: models/model.skops\n\s+hash: md5\n\s+md5: (\w+)", lock)
    assert found is not None
    md5 = found.group(1)
    key = f"store/files/md5/{md5[:2]}/{md5[2:]}"
    assert key in set(s3_server.keys(bucket)) - before
    fresh = tmp_path / "after"
    git(tmp_path, "clone", "-q", str(origin), str(fresh))
    no_secret_anywhere(fresh, run.output, out, err)


def test_quickstart_with_an_s3_remote_added_later_passes_ct_pr_and_deploy_as_a_fresh_runner(
    origin: Path,
    tmp_path: Path,
    install: str,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 13's "done when", as a user goes: `mlopskit quickstart demo`, an S3 remote
    added afterwards (`mlopskit remote add ... --default`, its endpoint with `dvc remote
    modify`, `ci.remote.kind: s3`), `data push`, `ci generate`, a push to origin; then,
    each job on a fresh runner (a new environment installing requirements.txt from the
    index and mlopskit from ci.install): CT on a params push, the PR report and gate, and
    deploy on the tag `mlopskit model promote --push` pushed. requirements.txt pins plain
    `dvc` (no `--remote s3://` at init): DVC's S3 plugin reaches the runners through the
    workflows' `mlopskit[s3]` install. (The deploy part is also the test of a stage tag:
    the model of that version, md5-checked, its card, deploy.sh, the release.)"""
    import hashlib
    import time

    from ..data.test_s3 import no_secret_anywhere
    from ..s3 import KEY_ID, SECRET

    started = time.monotonic()
    no_aws_credentials(monkeypatch, tmp_path)  # the jobs' keys come from secrets only
    for var in ("GITHUB_ACTIONS", "GITHUB_TOKEN", "GITHUB_REPOSITORY"):
        monkeypatch.delenv(var, raising=False)  # the developer's machine is not a runner
    aws = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}
    secrets = {"GITHUB_TOKEN": "test-token", **aws}

    def developer(*args: str, cwd: Path) -> str:
        """A command on the developer's machine, with their own S3 keys."""
        with monkeypatch.context() as m:
            for k, v in aws.items():
                m.setenv(k, v)
            code, out, err = run_cli(*args, cwd=cwd)
        assert code == 0, (args, out, err)
        return out

    demo = tmp_path / "demo"
    code, out, err = run_cli("quickstart", "demo", cwd=tmp_path)
    assert code == 0, err
    assert "dvc==" in (demo / "requirements.txt").read_text()
    assert "dvc[s3]" not in (demo / "requirements.txt").read_text()
    bucket = s3_server.bucket()
    developer("remote", "add", "storage", f"s3://{bucket}/store", "--default", cwd=demo)
    dvc(demo, "remote", "modify", "storage", "endpointurl", s3_server.endpoint)
    dvc(demo, "remote", "modify", "storage", "region", "us-east-1")
    config = demo / "mlopskit.yaml"
    text, n = re.subn(r"kind: none\b.*", "kind: s3", config.read_text())
    assert n == 1
    config.write_text(text.replace("\nci:\n", f"\nci:\n  install: {install}\n", 1))
    developer("data", "push", cwd=demo)
    assert set(s3_server.keys(bucket))
    out = developer("ci", "generate", cwd=demo)
    assert f"Runners install mlopskit from mlopskit[s3] @ {install} (ci.install)" in out
    assert "AWS_ACCESS_KEY_ID" in out  # what to set on GitHub
    git(demo, "add", "-A")
    git(demo, "commit", "-qm", "ci: an S3 remote for CI")
    git(demo, "remote", "add", "origin", str(origin))
    git(demo, "push", "-q", "-u", "origin", "main")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    act.prepare_clone(clone)
    setup_s = time.monotonic() - started

    # CT on a push that changes a param.
    params.set_params(Project(root=clone), ["train.C=0.3"])
    git(clone, "commit", "-qam", "try C=0.3")
    git(clone, "push", "-q", "origin", "main")
    pushed = git(origin, "rev-parse", "main").strip()
    before = set(s3_server.keys(bucket))
    t = time.monotonic()
    ct = act.run(
        clone, "push", "ct.yml", push_event("try C=0.3"), artifacts=tmp_path / "ct", secrets=secrets
    )
    ct_s = time.monotonic() - t
    assert ct.returncode == 0, ct.output[-6000:]
    installed_fresh(ct, install, jobs=1)
    assert re.search(r"Successfully installed .*\bdvc-s3-", ct.output), ct.output[-6000:]
    assert ct.ran("Running stage 'train'")
    assert ct.ran("| ✅ **Quality gate passed**")  # the report step tees the job summary
    log = git(origin, "log", "--format=%H %s", "-2", "main").splitlines()
    assert log[1].split()[0] == pushed
    assert re.fullmatch(r"[0-9a-f]{40} ct: retrain on [0-9a-f]{8} \[skip ci\]", log[0])
    lock = git(origin, "show", "main:dvc.lock")
    assert "train.C: 0.3" in lock
    found = re.search(r"path: models/model.skops\n\s+hash: md5\n\s+md5: (\w+)", lock)
    assert found is not None
    md5 = found.group(1)
    assert f"store/files/md5/{md5[:2]}/{md5[2:]}" in set(s3_server.keys(bucket)) - before
    git(clone, "pull", "-q", "--ff-only")
    assert git(clone, "rev-parse", "HEAD").strip() == log[0].split()[0]

    # A pull request on top of CT's commit: report, gate, comment.
    git(clone, "checkout", "-q", "-b", "feature")
    params.set_params(Project(root=clone), ["train.C=0.2"])
    git(clone, "commit", "-qam", "try C=0.2")
    t = time.monotonic()
    pr, state = run_pr(clone, "Try C=0.2", tmp_path / "pr", secrets=secrets, server_url=True)
    pr_s = time.monotonic() - t
    assert pr.returncode == 0, pr.output[-6000:]
    installed_fresh(pr, install, jobs=2)
    report = json.loads((tmp_path / "pr" / "mlopskit-report" / "report.json").read_text())
    assert report["passed"] is True and report["repro"] == "success"
    assert [p["key"] for p in report["params"]] == ["train.C"]
    (comment,) = state.comments
    assert "✅ **Quality gate passed**" in comment["body"]
    assert "| train.C | 0.3 | 0.2 | modified |" in comment["body"]
    git(clone, "checkout", "-q", "main")

    # Register CT's model and promote it, pushing the tags; deploy runs on the tag.
    developer("model", "register", "model", "--version", "v1.0.0", "--push", cwd=clone)
    out = developer("model", "promote", "model", "v1.0.0", "--stage", "prod", "--push", cwd=clone)
    assert "model@v1.0.0 is now in prod (model#prod#1)" in out
    assert "model#prod#1" in git(origin, "tag", "--list")
    deploy_sh = clone / "deploy" / "deploy.sh"
    deploy_sh.write_text(deploy_sh.read_text() + 'cp "$model_file" "$DEPLOYED_TO/"\n')
    deployed = tmp_path / "deployed"
    deployed.mkdir()
    tag = "model#prod#1"
    state = State(repo=act.REPOSITORY, token="test-token")
    t = time.monotonic()
    with serve(state) as url:
        deploy = act.run(
            clone,
            "push",
            "deploy.yml",
            {"ref": f"refs/tags/{tag}", "ref_name": tag},
            artifacts=tmp_path / "deploy",
            secrets=secrets,
            env={
                "GITHUB_API_URL": url,
                "GITHUB_REF_NAME": tag,
                "GITHUB_REF": f"refs/tags/{tag}",
                "DEPLOYED_TO": str(deployed),
            },
        )
    deploy_s = time.monotonic() - t
    assert deploy.returncode == 0, deploy.output[-6000:]
    installed_fresh(deploy, install, jobs=2)  # event (no remote: plain mlopskit) and deploy
    assert deploy.ran(f"{tag}: assignment: deploying")
    assert deploy.ran("Fetch the model and verify its md5")
    model = deployed / "model.skops"
    assert hashlib.md5(model.read_bytes()).hexdigest() == md5  # CT's model, from S3
    (release,) = state.releases
    assert release["tag_name"] == "model@v1.0.0" and release["name"] == "model v1.0.0 (prod)"
    assert release["body"].startswith("# Model card: model v1.0.0")
    assert set(state.uploads) == {"MODEL_CARD.md", "model.skops"}
    assert hashlib.md5(state.uploads["model.skops"]).hexdigest() == md5
    no_secret_anywhere(demo, ct.output, pr.output, deploy.output)  # keys only as secrets
    print(
        f"\ntimings: setup {setup_s:.0f}s, ct {ct_s:.0f}s, pr {pr_s:.0f}s, deploy {deploy_s:.0f}s"
    )


def test_model_promote_in_actions_dispatches_the_monorepo_projects_deploy_workflow(
    trained: Repo, origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`model promote --push` run inside Actions (GITHUB_ACTIONS, GITHUB_TOKEN) in a project
    at ml/churn of a bigger repository starts that project's deploy-ml-churn.yml by
    workflow_dispatch with the tag, on main; the file is what `ci generate` wrote."""
    import shutil

    top = tmp_path / "mono"
    sub = top / "ml" / "churn"
    shutil.copytree(trained.root, sub, ignore=shutil.ignore_patterns(".git", "tmp", ".github"))
    git(top, "init", "-q", "-b", "main")
    (sub / ".dvc" / "config.local").unlink()
    remote.add(Project(root=sub), "storage", str(trained.remote), default=True)
    assert ".github/workflows/deploy-ml-churn.yml" in workflows.generate(Project(root=sub)).written
    git(top, "add", "-A")
    git(top, "commit", "-qm", "a monorepo with one ML project")
    git(top, "remote", "add", "origin", str(origin))
    git(top, "push", "-q", "-u", "origin", "main")
    code, out, err = run_cli("model", "register", "model", "--version", "v1.0.0", "--push", cwd=sub)
    assert code == 0, err
    state = State(repo=act.REPOSITORY, token="test-token")
    with serve(state) as url:
        monkeypatch.setenv("GITHUB_ACTIONS", "true")
        monkeypatch.setenv("GITHUB_TOKEN", "test-token")
        monkeypatch.setenv("GITHUB_REPOSITORY", act.REPOSITORY)
        monkeypatch.setenv("GITHUB_API_URL", url)
        code, out, err = run_cli(
            "model", "promote", "model", "v1.0.0", "--stage", "prod", "--push", cwd=sub
        )
    assert code == 0, err
    found = re.search(r"\((\S+#prod#1)\); started deploy-ml-churn\.yml \(workflow_dispatch\)", out)
    assert found, out
    tag = found.group(1)
    assert state.dispatches == [("deploy-ml-churn.yml", {"ref": "main", "inputs": {"tag": tag}})]
    assert tag in git(origin, "tag", "--list").split()
    # pushed with a token whose pushes start workflows (MLOPSKIT_GIT_TOKEN, a PAT): that
    # push starts the deploy, and a dispatch too would deploy twice
    envs = {"dev": {"MLOPSKIT_GIT_TOKEN": "app-token"}, "qa": {"GITHUB_TOKEN": "github_pat_x"}}
    for stage, token_env in envs.items():
        with serve(state) as url, monkeypatch.context() as m:
            for k, v in {"GITHUB_API_URL": url, **token_env}.items():
                m.setenv(k, v)
            code, out, err = run_cli(
                "model", "promote", "model", "v1.0.0", "--stage", stage, "--push", cwd=sub
            )
        assert code == 0, err
        assert "workflow_dispatch" not in out, out
        assert len(state.dispatches) == 1, state.dispatches
        assert f"model#{stage}#" in git(origin, "tag", "--list")  # pushed all the same
    doc = (top / ".github" / "workflows" / "deploy-ml-churn.yml").read_text()
    assert "workflow_dispatch:" in doc and "working-directory: ml/churn" in doc
