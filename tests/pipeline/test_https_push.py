"""CT's pushes to an HTTPS origin that wants a token, end to end (issue 13, item 11): a
real smart-HTTP git server on 127.0.0.1 (tests/git_https.py). mlopskit hands git the
token from MLOPSKIT_GIT_TOKEN (or GITHUB_TOKEN) through a credential helper that reads
the environment: the token is never on a command line (the server looks through every
process's while it serves the push), never in a config file; without it, or with a wrong
one, the push fails at once (exit 4) with nothing lost and no prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlopskit import errors, params
from mlopskit.project import Project

from .. import git_https
from ..conftest import Repo, git, run_cli

TOKEN = "ghs_mlopskitTestToken0123456789"


@pytest.mark.slow
def test_commit_push_and_tag_push_over_https_with_the_token_from_the_environment(
    trained: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with git_https.serve(tmp_path / "git-server", TOKEN) as server:
        bare = server.root / "churn.git"
        git(tmp_path, "clone", "-q", "--bare", str(trained.root), str(bare))
        url = f"{server.url}churn.git"
        trained.git("remote", "add", "origin", url)
        trained.git("fetch", "-q", str(bare), "main:refs/remotes/origin/main")
        trained.git("branch", "-q", "--set-upstream-to=origin/main", "main")
        monkeypatch.setenv("GIT_SSL_CAINFO", str(server.ca_file))
        for var in ("MLOPSKIT_GIT_TOKEN", "GITHUB_TOKEN"):
            monkeypatch.delenv(var, raising=False)

        params.set_params(Project(root=trained.root), ["train.C=0.5"])
        code, out, err = run_cli("repro", "--push", cwd=trained.root)  # data before refs
        assert code == 0, err
        before = git(bare, "rev-parse", "main").strip()

        # No token: refused by the server at once, exit 4, the commit kept locally.
        code, out, err = run_cli("commit", "--push", "-m", "C=0.5", cwd=trained.root)
        assert code == errors.REMOTE, out + err
        assert server.denied > 0 and len(err.strip().splitlines()) == 1, err
        assert "was refused" in err and "MLOPSKIT_GIT_TOKEN" in err  # not retried: no use
        assert git(bare, "rev-parse", "main").strip() == before
        local = trained.head()
        assert local != before and "train.C: 0.5" in trained.git("show", "HEAD:dvc.lock")

        # A wrong token: the same.
        monkeypatch.setenv("MLOPSKIT_GIT_TOKEN", "ghs_wrong")
        denied = server.denied
        code, out, err = run_cli("commit", "--push", cwd=trained.root)
        assert code == errors.REMOTE, out + err
        assert server.denied > denied and "ghs_wrong" not in out + err
        assert git(bare, "rev-parse", "main").strip() == before

        # The token CT has: pushed; and a registry tag through the same path.
        monkeypatch.setenv("MLOPSKIT_GIT_TOKEN", TOKEN)
        served = len(server.served)
        code, out, err = run_cli("commit", "--push", cwd=trained.root)
        assert code == 0, out + err
        assert git(bare, "rev-parse", "main").strip() == local
        code, out, err = run_cli("model", "register", "model", "--push", cwd=trained.root)
        assert code == 0, out + err
        tags = trained.git("tag", "-l").split()
        assert tags and git(bare, "tag", "-l").split() == tags, out
        assert any(s.startswith("POST /churn.git/git-receive-pack") for s in server.served[served:])
        # Never on a command line while git talked to the server, never written down.
        assert server.seen_on_a_command_line == []
        assert TOKEN not in (trained.root / ".git" / "config").read_text()
        assert TOKEN not in out + err
