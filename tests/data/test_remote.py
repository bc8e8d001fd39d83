"""remote add / list: credentials only in .dvc/config.local, redacted everywhere."""

from __future__ import annotations

import json

from mlopskit import errors, remote

from ..conftest import Repo, dvc, run_cli

SECRETS = ["AKIAEXAMPLEKEY", "s3cr3t-value", "hunter2"]


def test_credentials_never_reach_the_committed_config(repo: Repo) -> None:
    """C4.46."""
    code, out, err = run_cli(
        "remote",
        "add",
        "s3",
        "s3://bucket/data",
        "--default",
        "--credential",
        f"access_key_id={SECRETS[0]}",
        "--credential",
        f"secret_access_key={SECRETS[1]}",
        cwd=repo.root,
    )
    assert code == 0, err
    committed = (repo.root / ".dvc" / "config").read_text()
    assert "s3://bucket/data" in committed and "remote = s3" in committed
    local = (repo.root / ".dvc" / "config.local").read_text()
    assert SECRETS[0] in local and SECRETS[1] in local
    for s in SECRETS:
        assert s not in committed
        assert s not in out and s not in err
    code, out, _ = run_cli("remote", "list", "--json", cwd=repo.root)
    assert code == 0
    for s in SECRETS:
        assert s not in out
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["s3"]["default"] is True
    assert rows["s3"]["options"] == {"access_key_id": "***", "secret_access_key": "***"}
    # git ignores config.local (dvc init wrote that rule)
    repo.git("add", "-A")
    assert ".dvc/config.local" not in repo.git("diff", "--cached", "--name-only")


def test_password_in_url_refused(repo: Repo) -> None:
    code, _, err = run_cli("remote", "add", "x", "ssh://me:hunter2@host/p", cwd=repo.root)
    assert code == errors.USAGE
    assert "hunter2" not in err and "--credential password" in err
    assert "host" not in (repo.root / ".dvc" / "config").read_text()


def test_redact_urls() -> None:
    from mlopskit._dvc import redact

    assert redact("https://u:pw@h/x and ssh://a:b@c") == "https://u:***@h/x and ssh://a:***@c"


def test_duplicate_and_bad_names(repo: Repo) -> None:
    remote.add(repo.project(), "one", "/tmp/x")
    code, _, err = run_cli("remote", "add", "one", "/tmp/y", cwd=repo.root)
    assert code == errors.USAGE and "--force" in err
    code, _, err = run_cli("remote", "add", "bad name", "/tmp/y", cwd=repo.root)
    assert code == errors.USAGE
    code, _, err = run_cli("remote", "add", "k", "/tmp/y", "--credential", "novalue", cwd=repo.root)
    assert code == errors.USAGE
    code, _, err = run_cli("remote", "add", "z", "gopher://x", cwd=repo.root)
    assert code == errors.USAGE and "unknown scheme" in err


def test_list_text(repo: Repo) -> None:
    code, out, _ = run_cli("remote", "list", cwd=repo.root)
    assert code == 0 and "local (default)" in out


def test_a_remote_whose_dvc_plugin_is_missing_names_what_to_install(trained: Repo) -> None:
    """dvc-gs is not in the test extras: a gs:// remote is exit 3 naming the extra to
    install, not exit 70 "a bug in mlopskit", and nothing local changes."""
    root = trained.root
    code, _, err = run_cli("remote", "add", "gcs", "gs://bucket/store", "--default", cwd=root)
    assert code == 0, err
    trained.git("add", ".dvc/config")
    trained.git("commit", "-qm", "remote: gs")
    head = trained.git("rev-parse", "HEAD")
    code, out, err = run_cli("data", "push", cwd=root)
    assert code == 3, (out, err)
    assert "DVC's gs plugin, which is not installed" in err and "gs://" in err
    assert 'pip install "mlopskit[gs]"' in err
    assert "bug" not in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert trained.git("rev-parse", "HEAD") == head and trained.git("status", "--porcelain") == ""


def test_remote_add_local_keeps_the_whole_remote_out_of_git(repo: Repo, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "laptop-store"
    committed_before = (repo.root / ".dvc" / "config").read_text()
    code, out, err = run_cli(
        "remote", "add", "mine", str(store), "--local", "--default", cwd=repo.root
    )
    assert code == 0, err
    assert (repo.root / ".dvc" / "config").read_text() == committed_before
    assert "mine" not in committed_before
    # DVC itself sees the remote, from config.local, and it is the default there.
    # (`dvc remote list` wraps long URLs at the terminal width: ask for the one value.)
    shown = dvc(repo.root, "config", "--local", "remote.mine.url").stdout.strip()
    assert shown == str(store)
    assert "mine" in dvc(repo.root, "remote", "list", "--local").stdout
    assert dvc(repo.root, "remote", "default", "--local").stdout.strip() == "mine"
    assert "mine" not in dvc(repo.root, "remote", "list", "--project").stdout
    assert repo.status() == ""  # nothing for git to commit
