"""A real SSH DVC remote: Debian's sshd on 127.0.0.1, key auth, dvc-ssh (asyncssh) as client."""

from __future__ import annotations

import getpass
import hashlib
import shutil
from pathlib import Path

import pytest

from mlopskit import data, errors, remote

from .. import sshd
from ..conftest import Repo, run_cli

pytestmark = pytest.mark.ssh


def md5(p: Path) -> str:
    return hashlib.md5(p.read_bytes()).hexdigest()


def test_push_pull_round_trip_over_ssh(repo: Repo, tmp_path: Path) -> None:
    """Push to and pull from a real SSH remote; the key path stays out of .dvc/config.

    sshd is started in the test body, not in a fixture, so that a missing openssh-server
    is a test failure (with the apt-get hint), not a setup error.

    No known_hosts is written, because none would be read: sshfs (under dvc-ssh) connects
    with asyncssh's ``known_hosts=None``, i.e. without checking the server's host key, and
    dvc-ssh has no option to turn the check on.
    """
    with sshd.running(tmp_path / "sshd") as server:
        _round_trip(repo, server, tmp_path / "ssh-remote")


def _round_trip(repo: Repo, server: sshd.SSHServer, remote_dir: Path) -> None:
    remote_dir.mkdir()
    key = server.client_key
    project = repo.project()
    remote.add(
        project,
        "ssh",
        server.url(remote_dir),
        default=True,
        credentials={"keyfile": str(key)},
    )

    f = repo.write("data/x.csv", "a,b\n" + "".join(f"{i},{i * i}\n" for i in range(500)))
    digest = md5(f)
    payload = f.read_bytes()
    data.add(project, ["data/x.csv"])

    pushed = data.push(project, remote="ssh")
    assert pushed.count == 1, server.log_text()
    assert pushed.remote == "ssh"
    obj = remote_dir / "files" / "md5" / digest[:2] / digest[2:]
    assert obj.is_file(), server.log_text()
    assert obj.read_bytes() == payload

    f.unlink()
    shutil.rmtree(repo.root / ".dvc" / "cache")
    pulled = data.pull(project, remote="ssh")
    assert pulled.count == 1, server.log_text()
    assert f.read_bytes() == payload

    # Credentials only ever in config.local (git-ignored), never in .dvc/config.
    local = (repo.root / ".dvc" / "config.local").read_text()
    assert "keyfile" in local
    assert str(key) in local
    for text in (repo.git("show", "HEAD:.dvc/config"), (repo.root / ".dvc/config").read_text()):
        assert "keyfile" not in text
        assert str(key) not in text
    assert ".dvc/config.local" not in repo.status()


def test_push_to_unreachable_ssh_remote_exits_4(repo: Repo, tmp_path: Path) -> None:
    """C4.40: nothing listens on the port: exit 4 with one line, local state unchanged."""
    port = sshd.free_port()  # bound, then released: nothing listens there
    # A real key: a missing keyfile fails before any connection is tried.
    key = tmp_path / "id_ed25519"
    sshd.keygen(key)
    remote.add(
        repo.project(),
        "dead",
        f"ssh://{getpass.getuser()}@127.0.0.1:{port}/srv/dvc",
        credentials={"keyfile": str(key)},
    )
    repo.write("data/x.csv", "a,b\n1,2\n")
    data.add(repo.project(), ["data/x.csv"])
    before = repo.status()
    head = repo.head()

    code, out, err = run_cli("data", "push", "-r", "dead", cwd=repo.root)

    assert code == errors.REMOTE, (code, out, err)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: push: remote unreachable"), err
    assert repo.status() == before
    assert repo.head() == head


def test_missing_keyfile_is_a_usage_error(repo: Repo, tmp_path: Path) -> None:
    """A keyfile that is not there is bad configuration (exit 2), not a crash."""
    port = sshd.free_port()
    remote.add(
        repo.project(),
        "nokey",
        f"ssh://{getpass.getuser()}@127.0.0.1:{port}/srv/dvc",
        credentials={"keyfile": str(tmp_path / "missing_key")},
    )
    repo.write("data/x.csv", "a,b\n1,2\n")
    data.add(repo.project(), ["data/x.csv"])
    code, out, err = run_cli("data", "push", "-r", "nokey", cwd=repo.root)
    assert code == errors.USAGE, (code, out, err)
    assert "missing_key" in err and err.count("\n") == 1
