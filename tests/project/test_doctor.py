"""mlopskit doctor: each problem is created for real, then named with its fix."""

from __future__ import annotations

import importlib.metadata
import json
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest

from mlopskit import doctor
from mlopskit.config import CIConfig

from ..cli.test_interrupts import KILLED_ADD
from ..conftest import Repo, dvc, git, run_cli, run_subprocess

NAMES = [
    "git",
    "git identity",
    "dvc",
    "remote",
    "ci remote",
    "journal",
    "data pushed",
    "dvc.lock",
    "workflows",
    "mlopskit version",
    "temporary files",
]


# Where the workflows get mlopskit from: ci.install in mlopskit.yaml once that setting
# exists (the workflows then install it in a step of their own), else requirements.txt.
CI_INSTALL = "install" in {f.name for f in fields(CIConfig)}
PINNED_COMMIT = "git+https://example.invalid/mlopskit.git@" + "0123456789abcdef" * 2 + "01234567"


def set_ci(p: Repo, **values: str) -> None:
    """Set keys of the ci: section of mlopskit.yaml, then regenerate the workflows."""
    cfg = p.root / "mlopskit.yaml"
    lines = cfg.read_text().splitlines(keepends=True)
    at = lines.index("ci:\n") + 1
    kept = [x for x in lines[at:] if not any(x.startswith(f"  {k}:") for k in values)]
    extra = [f"  {k}: {json.dumps(v)}\n" for k, v in values.items() if v]
    cfg.write_text("".join(lines[:at] + extra + kept))
    code, _, err = run_cli("ci", "generate", cwd=p.root)
    assert code == 0, err


@pytest.fixture
def project(trained: Repo) -> Repo:
    """The trained quickstart project, its workflows told where to install mlopskit from
    (this checkout's editable install is a source no runner can reach)."""
    if CI_INSTALL:
        set_ci(trained, install=PINNED_COMMIT)
        trained.git("add", "-A")
        trained.git("commit", "-qm", "ci: install mlopskit from a pinned commit")
    return trained


def run_doctor(root: Path, *args: str) -> tuple[int, dict[str, dict[str, str]], str, str]:
    """``mlopskit doctor --json``: (exit code, checks by name, stdout, stderr)."""
    code, out, err = run_cli("doctor", "--json", *args, cwd=root)
    data = json.loads(out)
    assert set(data) == {"root", "ok", "checks"}
    assert Path(data["root"]) == root.resolve()
    for c in data["checks"]:
        assert set(c) == {"name", "status", "message", "fix"}
        assert c["status"] in ("ok", "warn", "fail")
    assert data["ok"] == all(c["status"] != "fail" for c in data["checks"])
    return code, {c["name"]: c for c in data["checks"]}, out, err


def statuses(checks: dict[str, dict[str, str]]) -> dict[str, str]:
    return {name: c["status"] for name, c in checks.items()}


def commit_shared_remote(p: Repo) -> None:
    """Make the project CI-ready: its remote committed in .dvc/config, ci.remote.kind local."""
    (p.root / ".dvc" / "config.local").unlink()
    dvc(p.root, "remote", "add", "-d", "shared", str(p.remote))
    cfg = p.root / "mlopskit.yaml"
    cfg.write_text(cfg.read_text().replace("kind: none", "kind: local", 1))
    code, _, err = run_cli("ci", "generate", cwd=p.root)
    assert code == 0, err
    p.git("add", "-A")
    p.git("commit", "-qm", "ci: the shared remote")


def test_healthy_project_exits_0(project: Repo) -> None:
    commit_shared_remote(project)
    code, checks, _, _ = run_doctor(project.root)
    assert code == 0
    assert list(checks) == NAMES
    assert statuses(checks) == dict.fromkeys(NAMES, "ok"), checks
    assert all(c["fix"] is None for c in checks.values())
    assert "'shared'" in checks["ci remote"]["message"]
    assert "every DVC-tracked output is in remote 'shared'" in checks["data pushed"]["message"]
    assert "finds nothing" in checks["workflows"]["message"]
    assert "after 60 days without activity" in checks["workflows"]["message"]
    # The text form: one line per check and the verdict.
    code, out, _ = run_cli("doctor", cwd=project.root)
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == ["ok"] * len(NAMES)
    assert lines[-1] == "Healthy."
    assert project.status() == ""  # doctor changes nothing


def test_remote_only_in_config_local_warns_that_ci_cannot_reach_it(project: Repo) -> None:
    """The quickstart default: fine here, but a CI runner's clone has no remote."""
    code, checks, _, _ = run_doctor(project.root)
    assert code == 0  # a warning is not a failure
    assert checks["remote"]["status"] == "ok"
    ci = checks["ci remote"]
    assert ci["status"] == "warn"
    assert "CI cannot reach a remote: no default remote is committed" in ci["message"]
    assert "CT trains but stores nothing" in ci["message"]
    assert "mlopskit remote add NAME s3://... --default" in ci["fix"]
    assert "ci.remote.kind" in ci["fix"]
    # --strict counts warnings as problems; the text form prints the fix.
    code, out, err = run_cli("doctor", "--strict", cwd=project.root)
    assert code == 1
    assert "fix: commit a remote CI can reach" in out
    assert "1 problem(s): ci remote" in err


def test_no_remote_fails_with_the_command_that_adds_one(project: Repo) -> None:
    (project.root / ".dvc" / "config.local").unlink()
    code, checks, _, _ = run_doctor(project.root)
    assert code == 1
    assert checks["remote"]["status"] == "fail"
    assert checks["remote"]["message"] == "no default DVC remote is configured"
    assert checks["remote"]["fix"] == "add one: 'mlopskit remote add NAME URL --default'"
    assert checks["data pushed"]["status"] == "warn"
    assert "not checked" in checks["data pushed"]["message"]
    code, out, err = run_cli("doctor", cwd=project.root)
    assert code == 1
    assert "fail  remote" in out
    assert "error: 1 problem(s): remote" in err


def test_local_remote_folder_missing(project: Repo, tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    dvc(project.root, "remote", "modify", "--local", "local", "url", str(gone))
    code, checks, _, _ = run_doctor(project.root)
    assert code == 1
    assert checks["remote"]["status"] == "fail"
    assert f"the folder {gone} does not exist" in checks["remote"]["message"]
    assert "a local folder must exist" in checks["remote"]["fix"]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    for c in held:
        c.close()
    srv.close()


def test_remote_that_never_answers_does_not_hang(project: Repo, silent_server: int) -> None:
    url = f"http://127.0.0.1:{silent_server}/store"
    dvc(project.root, "remote", "modify", "--local", "local", "url", url)
    # A subprocess with a deadline: a hang fails the test instead of stalling the suite.
    res = run_subprocess("doctor", "--json", "--timeout", "1", cwd=project.root, timeout=90)
    assert res.returncode == 1, res.stderr
    checks = {c["name"]: c for c in json.loads(res.stdout)["checks"]}
    assert checks["remote"]["status"] == "fail"
    assert "is not reachable from here: no answer within 1 s" in checks["remote"]["message"]
    assert checks["data pushed"]["status"] == "warn"


def test_new_remote_with_nothing_pushed_is_reachable(project: Repo, tmp_path: Path) -> None:
    """An HTTP server whose root answers; the remote's own folder does not exist yet."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    served = tmp_path / "www"
    served.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/store"
        dvc(project.root, "remote", "modify", "--local", "local", "url", url)
        res = run_subprocess("doctor", "--json", "--timeout", "20", cwd=project.root, timeout=90)
        checks = {c["name"]: c for c in json.loads(res.stdout)["checks"]}
        assert checks["remote"]["status"] == "ok", checks["remote"]
        assert checks["remote"]["message"] == (
            f"default remote 'local' ({url}) is reachable (nothing pushed to it yet)"
        )
        # And the data check asks that remote: nothing is in it.
        assert checks["data pushed"]["status"] == "fail"
        assert "are not in remote 'local'" in checks["data pushed"]["message"]
    finally:
        server.shutdown()
        server.server_close()


def test_hand_edited_workflow(project: Repo) -> None:
    ci = project.root / ".github" / "workflows" / "ci.yml"
    ci.write_text(ci.read_text().replace("timeout-minutes:", "timeout-minutes:  ", 1))
    code, checks, _, _ = run_doctor(project.root)
    assert code == 0
    w = checks["workflows"]
    assert w["status"] == "warn"
    assert w["message"] == "edited by hand: .github/workflows/ci.yml"
    assert w["fix"] == "move the change into mlopskit.yaml, then 'mlopskit ci generate --force'"
    # An edit that breaks a rule of 'ci check' is a failure.
    text = ci.read_text()
    assert "persist-credentials: false" in text
    ci.write_text(text.replace("persist-credentials: false", "persist-credentials: true"))
    code, checks, _, _ = run_doctor(project.root)
    assert code == 1
    w = checks["workflows"]
    assert w["status"] == "fail"
    assert "'ci check' has" in w["message"]
    assert "checkout without persist-credentials: false" in w["message"]
    assert "mlopskit ci check" in w["fix"]


def test_workflows_out_of_date_with_mlopskit_yaml(project: Repo) -> None:
    cfg = project.root / "mlopskit.yaml"
    cfg.write_text(cfg.read_text().replace('python: "3.11"', 'python: "3.12"', 1))
    code, checks, _, _ = run_doctor(project.root)
    assert code == 0
    w = checks["workflows"]
    assert w["status"] == "warn"
    assert "out of date with mlopskit.yaml" in w["message"]
    assert ".github/workflows/ci.yml" in w["message"]
    assert w["fix"] == "run 'mlopskit ci generate'"


def test_data_not_pushed(project: Repo) -> None:
    project.write("data/extra.csv", "a,b\n1,2\n")
    code, _, err = run_cli("data", "add", "data/extra.csv", cwd=project.root)
    assert code == 0, err
    oracle = dvc(project.root, "data", "status", "--not-in-remote").stdout
    assert "Not in remote:" in oracle and "data/extra.csv" in oracle
    code, checks, _, _ = run_doctor(project.root)
    assert code == 1
    d = checks["data pushed"]
    assert d["status"] == "fail"
    assert d["message"] == "1 DVC-tracked path(s) are not in remote 'local': data/extra.csv"
    assert d["fix"] == "run 'mlopskit data push'"
    assert run_cli("data", "push", cwd=project.root)[0] == 0
    code, checks, _, _ = run_doctor(project.root)
    assert code == 0
    assert checks["data pushed"]["status"] == "ok"


def test_stale_dvc_lock_after_editing_a_dependency(project: Repo) -> None:
    train = project.root / "src" / "train.py"
    train.write_text(train.read_text() + "\n# a change\n")
    assert "changed deps" in dvc(project.root, "status").stdout  # the oracle agrees
    code, checks, _, _ = run_doctor(project.root)
    assert code == 0
    lock = checks["dvc.lock"]
    assert lock["status"] == "warn"
    assert lock["message"].startswith("dvc.lock does not match the workspace: train (")
    assert "src/train.py" in lock["message"]
    assert lock["fix"] == "run 'mlopskit repro --push --commit' (or undo the change)"


def test_journal_left_by_a_killed_data_add(project: Repo) -> None:
    project.write("d.txt", "data\n")
    res = subprocess.run(
        [sys.executable, "-c", KILLED_ADD, "git-commit"],
        cwd=project.root,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert res.returncode == -signal.SIGKILL, res.stdout + res.stderr
    assert (project.root / ".dvc" / "tmp" / "mlopskit" / "txn.json").is_file()
    code, checks, _, _ = run_doctor(project.root)
    assert code == 1
    j = checks["journal"]
    assert j["status"] == "fail"
    assert j["message"] == (
        "an interrupted 'data add' of d.txt left .dvc/tmp/mlopskit/txn.json; "
        "commands that change the project refuse to run"
    )
    assert j["fix"] == "run 'mlopskit recover' to complete or undo it"
    assert run_cli("recover", cwd=project.root)[0] == 0
    _, checks, _, _ = run_doctor(project.root)
    assert checks["journal"]["status"] == "ok"


def test_no_git_identity(project: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-gitconfig"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    for var in ("EMAIL", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("GIT_COMMITTER_EMAIL", raising=False)
    # Never guess one from the host name, whatever this machine is called.
    project.git("config", "user.useConfigOnly", "true")
    res = subprocess.run(
        ["git", "commit", "--allow-empty", "-m", "x"],
        cwd=project.root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode != 0 and "identity unknown" in res.stderr  # git really cannot
    code, checks, _, _ = run_doctor(project.root)
    assert code == 1
    ident = checks["git identity"]
    assert ident["status"] == "fail"
    assert ident["message"].startswith("git has no identity, so no commit can be made")
    assert 'git config --global user.email "you@example.com"' in ident["fix"]


def test_credentials_committed_in_dvc_config(project: Repo) -> None:
    dvc(project.root, "remote", "add", "s3", "s3://bucket/path")
    dvc(project.root, "remote", "modify", "s3", "secret_access_key", "hunter2")
    assert "hunter2" in (project.root / ".dvc" / "config").read_text()
    code, checks, out, _ = run_doctor(project.root)
    assert code == 1
    ci = checks["ci remote"]
    assert ci["status"] == "fail"
    assert ci["message"] == ".dvc/config (committed) holds credentials ('s3': secret_access_key)"
    assert "dvc remote modify --local NAME OPTION VALUE" in ci["fix"]
    assert "rotate it" in ci["fix"]
    assert "hunter2" not in out


def test_committed_cloud_remote_without_ci_credentials(project: Repo) -> None:
    dvc(project.root, "remote", "add", "-d", "s3", "s3://bucket/path")
    (project.root / ".dvc" / "config.local").unlink()
    _, checks, _, _ = run_doctor(project.root, "--timeout", "1")
    ci = checks["ci remote"]
    assert ci["status"] == "warn"
    assert "is s3:// but ci.remote.kind is none" in ci["message"]
    assert "set ci.remote.kind in mlopskit.yaml" in ci["fix"]
    cfg = project.root / "mlopskit.yaml"
    cfg.write_text(cfg.read_text().replace("kind: none", "kind: s3", 1))
    _, checks, _, _ = run_doctor(project.root, "--timeout", "1")
    ci = checks["ci remote"]
    assert ci["status"] == "ok"
    assert "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY" in ci["message"]
    assert "'ml-training'" in ci["message"]


def test_installed_mlopskit_matches_the_workflows(project: Repo) -> None:
    version, direct = doctor.installed()
    assert version == importlib.metadata.version("mlopskit")
    code, checks, _, _ = run_doctor(project.root)
    assert code == 0
    v = checks["mlopskit version"]
    assert v["status"] == "ok"
    if CI_INSTALL:
        # A pinned commit against this editable checkout: nothing to compare, said so.
        assert direct is not None and "dir_info" in direct
        assert v["message"].startswith(f"unknown: the workflows install {PINNED_COMMIT}")
    else:
        assert f"mlopskit=={version}\n" in (project.root / "requirements.txt").read_text()
        assert v["message"].startswith(f"the workflows install 'mlopskit=={version}'")


def test_installed_mlopskit_differs_from_the_workflows(project: Repo) -> None:
    version, _ = doctor.installed()
    if CI_INSTALL:
        set_ci(project, install="mlopskit==99.0.0", index_url="https://example.invalid/simple")
        source, fix = "ci.install in mlopskit.yaml", "or point ci.install at this one"
    else:
        req = project.root / "requirements.txt"
        req.write_text(req.read_text().replace(f"mlopskit=={version}", "mlopskit==99.0.0"))
        source, fix = "requirements.txt", f"put 'mlopskit=={version}' in requirements.txt"
    code, checks, _, _ = run_doctor(project.root)
    assert code == 0
    v = checks["mlopskit version"]
    assert v["status"] == "warn"
    assert f"install 'mlopskit==99.0.0' ({source}), but mlopskit {version}" in v["message"]
    assert v["message"].endswith("is installed here")
    assert v["fix"].startswith("make them the same: ") and fix in v["fix"]


def test_workflows_that_install_no_mlopskit(project: Repo, tmp_path: Path) -> None:
    version, _ = doctor.installed()
    if CI_INSTALL:
        # init with this editable install: no source a runner can reach is known.
        root = tmp_path / "fresh"
        code, _, err = run_cli("init", str(root))
        assert code == 0, err
        from mlopskit.ci import workflows

        fix = workflows.install_hint()  # type: ignore[attr-defined]
    else:
        root = project.root
        req = root / "requirements.txt"
        req.write_text("".join(x for x in req.read_text().splitlines(True) if "mlopskit" not in x))
        fix = f"add 'mlopskit=={version}' to requirements.txt"
    code, checks, _, _ = run_doctor(root)
    assert code == 1
    v = checks["mlopskit version"]
    assert v["status"] == "fail"
    assert v["message"].startswith("the workflows install no mlopskit (")
    assert v["message"].endswith("so CI cannot run it")
    assert v["fix"] == fix


def test_install_records_matched_to_url_requirements() -> None:
    """PEP 610 direct_url.json documents against the URL forms a requirement can take."""
    commit = "89abcdef" * 5
    vcs = {
        "url": "https://example.invalid/mlopskit.git",
        "vcs_info": {"vcs": "git", "commit_id": commit, "requested_revision": "v1"},
    }
    assert doctor._same_url(f"git+https://example.invalid/mlopskit.git@{commit}", vcs)
    assert doctor._same_url("git+https://example.invalid/mlopskit.git@v1", vcs)
    assert not doctor._same_url(f"git+https://example.invalid/other.git@{commit}", vcs)
    assert not doctor._same_url("git+https://example.invalid/mlopskit.git@" + "0" * 40, vcs)
    digest = "ab" * 32
    wheel = "https://example.invalid/mlopskit-0.1.0-py3-none-any.whl"
    archive = {"url": wheel, "archive_info": {"hashes": {"sha256": digest}}}
    assert doctor._same_url(f"{wheel}#sha256={digest}", archive)
    assert not doctor._same_url(f"{wheel}#sha256={'cd' * 32}", archive)
    old_style = {"url": wheel, "archive_info": {"hash": f"sha256={digest}"}}
    assert doctor._same_url(f"{wheel}#sha256={digest}", old_style)


def test_malformed_dvc_yaml_is_named_not_a_crash(project: Repo) -> None:
    (project.root / "dvc.yaml").write_text("stages:\n  train:\n    cmd: [unclosed\n")
    code, checks, _, err = run_doctor(project.root)
    assert code == 1
    lock = checks["dvc.lock"]
    assert lock["status"] == "fail"
    assert lock["message"].startswith("dvc.yaml:4: ")  # FILE:LINE, one line
    assert lock["fix"] == "correct it; 'mlopskit validate' checks the project's files"
    assert "Traceback" not in err
    assert checks["git"]["status"] == "ok"  # the other checks still ran


def test_half_written_copy_in_the_cache(project: Repo) -> None:
    # dvc-objects names its temporary copies f".{secrets.token_urlsafe(16)}.tmp".
    orphan = project.root / ".dvc/cache/files/md5/ab/.Zm9vYmFyYmF6cXV4cXV1eA.tmp"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"half")
    code, checks, _, _ = run_doctor(project.root)
    assert code == 0
    t = checks["temporary files"]
    assert t["status"] == "warn"
    assert str(orphan) in t["message"]
    assert "delete them" in t["fix"]


def test_not_a_repository_and_no_dvc(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    code, checks, _, _ = run_doctor(plain)
    assert code == 1
    assert list(checks) == ["git"]
    assert checks["git"]["status"] == "fail"
    assert "not a git repository" in checks["git"]["message"]
    assert "mlopskit init" in checks["git"]["fix"]
    git(plain, "init", "-q", "-b", "main")
    code, checks, _, _ = run_doctor(plain)
    assert code == 1
    assert list(checks) == ["git", "git identity", "dvc"]
    assert checks["git"]["status"] == "warn"  # no commit yet
    assert checks["dvc"]["status"] == "fail"
    assert checks["dvc"]["fix"] == "run 'mlopskit init'"
    assert not (plain / ".dvc").exists()
    assert [p.name for p in plain.iterdir()] == [".git"]
