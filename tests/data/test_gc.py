"""mlopskit gc: a dry run by default; registry tags, branches and the workspace are kept.

Catalogue cases C1.9-C1.12 (scope, dry run, broken revision, shared remote), dvc#7496
(a tagged version's data and ``.dir`` manifest survive) and C1.5 (orphan ``.tmp`` files).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest

from mlopskit import errors

from ..conftest import Repo, _copy, dvc, git, run_cli

TMP_NAME = ".AbCdEfGhIjKlMnOpQrStUv.tmp"  # the shape of dvc-objects' tmp_fname()


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def obj(store: Path, oid: str) -> Path:
    return store / "files" / "md5" / oid[:2] / oid[2:]


def cache(repo: Repo) -> Path:
    return repo.root / ".dvc" / "cache"


def files_in(store: Path) -> set[str]:
    return {p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file()}


def version(repo: Repo, text: str, message: str) -> None:
    repo.write("data/x.txt", text)
    dvc(repo.root, "add", "data/x.txt")
    repo.git("add", "data/x.txt.dvc", "data/.gitignore")
    repo.git("commit", "-qm", message)


@pytest.fixture(scope="session")
def _history(
    _base_repo: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("gc")
    repo = _copy(*_base_repo[:1], base / "repo", _base_repo[1], base / "remote")
    repo.write("data/dir/a.txt", "dir v1 a\n")
    repo.write("data/dir/b.txt", "dir v1 b\n")
    dvc(repo.root, "add", "data/dir")
    repo.git("add", "data/dir.dvc", "data/.gitignore")
    version(repo, "v1\n", "v1")
    repo.git("tag", "-a", "data@v1.0.0", "-m", "registered")
    repo.write("data/dir/a.txt", "dir v2 a\n")
    dvc(repo.root, "add", "data/dir")
    repo.git("add", "data/dir.dvc")
    version(repo, "v2\n", "v2")
    repo.write("data/dir/a.txt", "dir v3 a\n")
    dvc(repo.root, "add", "data/dir")
    repo.git("add", "data/dir.dvc")
    version(repo, "v3\n", "v3")
    dvc(repo.root, "push", "--all-commits")
    repo.write("junk.bin", "never committed\n")
    dvc(repo.root, "add", "junk.bin")
    dvc(repo.root, "remove", "junk.bin.dvc")
    (repo.root / "junk.bin").unlink()
    return repo.root, repo.remote


@pytest.fixture
def history(_history: tuple[Path, Path], tmp_path: Path) -> Repo:
    """main: v1 (tagged ``data@v1.0.0``, with a directory) -> v2 -> v3, all pushed,
    plus a cached object no commit uses."""
    src, remote = _history
    return _copy(src, tmp_path / "repo", remote, tmp_path / "remote")


def test_dry_run_by_default_then_yes_removes(history: Repo) -> None:
    """C1.10: nothing is removed without --yes; the tagged v1 and its .dir survive."""
    before = files_in(cache(history))
    code, out, err = run_cli("gc", cwd=history.root)
    assert code == 0, err
    assert files_in(cache(history)) == before
    v2, junk = md5("v2\n"), md5("never committed\n")
    assert f"{v2[:2]}/{v2[2:]}" in out and f"{junk[:2]}/{junk[2:]}" in out
    assert "Would remove from cache" in out and "Dry run: nothing was removed" in out
    assert "tag data@v1.0.0" in out and "main" in out
    assert f"{md5('v1' + chr(10))[:2]}/" not in out.split("Would remove")[1]

    status = history.status()
    code, out, err = run_cli("gc", "--yes", cwd=history.root)
    assert code == 0, err
    assert "Removed 4 file(s)" in out  # v2, junk, the v2 .dir manifest and dir v2's a.txt
    assert history.status() == status and history.git("tag", "-l").split() == ["data@v1.0.0"]
    assert "up to date" in dvc(history.root, "status").stdout  # the workspace lost nothing
    for gone in (v2, junk, md5("dir v2 a\n")):
        assert not obj(cache(history), gone).exists()
    for kept in (md5("v1\n"), md5("v3\n"), md5("dir v1 a\n"), md5("dir v1 b\n")):
        assert obj(cache(history), kept).exists()
    # The tagged version checks out whole from the cache alone: its .dir manifest survived.
    history.git("checkout", "-q", "data@v1.0.0")
    dvc(history.root, "checkout")
    assert (history.root / "data" / "dir" / "a.txt").read_text() == "dir v1 a\n"
    assert (history.root / "data" / "x.txt").read_text() == "v1\n"
    # The remote was not touched without --cloud.
    assert obj(history.remote, v2).exists()


def test_more_commits_and_named_branches(history: Repo) -> None:
    v2 = md5("v2\n")
    code, out, err = run_cli("gc", "--commits", "2", cwd=history.root)
    assert code == 0, err
    assert "main~1" in out and f"{v2[:2]}/{v2[2:]}" not in out
    # Naming a branch keeps that branch only (plus registry tags).
    history.git("branch", "side", "HEAD~1")
    code, out, _ = run_cli("gc", "-b", "side", cwd=history.root)
    assert code == 0
    v3 = md5("v3\n")
    assert f"{v2[:2]}/{v2[2:]}" not in out and f"{v3[:2]}/{v3[2:]}" not in out  # v3: workspace
    code, out, _ = run_cli("gc", "-b", "main", "--json", cwd=history.root)
    assert code == 0 and '"removed": false' in out


def test_remote_tracking_branches_are_kept(history: Repo, origin: Path) -> None:
    """A branch that exists only as origin/NAME (deleted locally) still keeps its data."""
    history.git("branch", "feature", "HEAD~1")  # v2
    history.git("remote", "add", "origin", str(origin))
    history.git("push", "-q", "origin", "main", "feature")
    history.git("fetch", "-q", "origin")
    history.git("branch", "-D", "feature")
    v2 = md5("v2\n")
    code, out, err = run_cli("gc", "--yes", cwd=history.root)
    assert code == 0, err
    assert "origin/feature" in out and "origin/main" in out
    assert obj(cache(history), v2).exists()
    history.git("branch", "-dr", "origin/feature")
    code, out, err = run_cli("gc", "--yes", cwd=history.root)
    assert code == 0, err
    assert not obj(cache(history), v2).exists()


def test_scope_and_usage_errors(history: Repo) -> None:
    """C1.9 in mlopskit's terms: the scope is always explicit in the output, and a bad
    one is exit 2 before anything is read."""
    before = files_in(cache(history))
    code, _, err = run_cli("gc", "-b", "nope", "--yes", cwd=history.root)
    assert code == errors.USAGE and "nope" in err
    code, _, err = run_cli("gc", "-r", "local", "--yes", cwd=history.root)
    assert code == errors.USAGE and "--cloud" in err
    code, _, err = run_cli("gc", "--commits", "0", cwd=history.root)
    assert code == errors.USAGE
    (history.root / ".dvc" / "config.local").unlink()
    code, _, err = run_cli("gc", "--cloud", "--yes", "--not-shared", cwd=history.root)
    assert code == errors.USAGE and "remote add" in err
    assert files_in(cache(history)) == before


def test_cloud_needs_yes_and_an_answer_about_sharing(history: Repo) -> None:
    """C1.12: --cloud --yes is refused until --not-shared or --project is given."""
    remote_before = files_in(history.remote)
    code, out, err = run_cli("gc", "--cloud", cwd=history.root)
    assert code == 0, err
    assert "Would remove from remote 'local'" in out
    code, _, err = run_cli("gc", "--cloud", "--yes", cwd=history.root)
    assert code == errors.PRECONDITION and "--not-shared" in err and "--project" in err
    assert files_in(history.remote) == remote_before
    code, out, err = run_cli("gc", "--cloud", "--yes", "--not-shared", cwd=history.root)
    assert code == 0, err
    assert "Removed from remote 'local'" in out
    assert not obj(history.remote, md5("v2\n")).exists()
    assert obj(history.remote, md5("v1\n")).exists() and obj(history.remote, md5("v3\n")).exists()
    assert "in sync" in dvc(history.root, "status", "-c").stdout
    # dvc#7496: the tagged version's .dir manifest is still in the remote.
    tagged = history.git("show", "data@v1.0.0:data/dir.dvc")
    manifest = next(line.split()[-1] for line in tagged.splitlines() if "md5:" in line)
    assert manifest.endswith(".dir") and obj(history.remote, manifest).exists()


def test_other_projects_on_a_shared_remote_are_kept(history: Repo, tmp_path: Path) -> None:
    """C1.12: repo B uses an object repo A no longer references; gc in A with --project B
    keeps it."""
    b = tmp_path / "b"
    git(tmp_path, "clone", "-q", str(history.root), str(b))
    shutil.copy(history.root / ".dvc" / "config.local", b / ".dvc" / "config.local")
    dvc(b, "pull")
    (b / "data" / "x.txt").write_text("only in B\n")
    dvc(b, "add", "data/x.txt")
    git(b, "commit", "-qam", "B's own data")
    dvc(b, "push")
    only_b = md5("only in B\n")
    assert obj(history.remote, only_b).exists()
    code, out, err = run_cli("gc", "--cloud", "--yes", "--project", str(b), cwd=history.root)
    assert code == 0, err
    assert obj(history.remote, only_b).exists()
    assert not obj(history.remote, md5("v2\n")).exists()
    code, _, err = run_cli("gc", "--project", str(tmp_path / "nowhere"), cwd=history.root)
    assert code == errors.USAGE and "nowhere" in err


def test_a_broken_revision_aborts_before_any_removal(history: Repo) -> None:
    """C1.11: an unreadable dvc.yaml at a kept revision: exit 1 naming it, nothing removed,
    with --yes too (DVC's --skip-failed is never passed)."""
    history.git("switch", "-q", "-c", "broken")
    history.write("dvc.yaml", "stages:\n  s:\n    cmd: [unclosed\n")
    history.git("add", "dvc.yaml")
    history.git("commit", "-qm", "broken pipeline")
    bad = history.head()
    history.git("switch", "-q", "main")
    before, remote_before = files_in(cache(history)), files_in(history.remote)
    for args in (["--yes"], ["--cloud", "--yes", "--not-shared"], ["--all-commits", "--yes"]):
        code, out, err = run_cli("gc", *args, cwd=history.root)
        assert code == errors.FAILED, (args, out, err)
        assert bad[:8] in err and "nothing was removed" in err
        assert files_in(cache(history)) == before
        assert files_in(history.remote) == remote_before
    code, _, err = run_cli("gc", "--yes", cwd=history.root)
    assert "(broken)" in err


def test_missing_directory_manifest_aborts(history: Repo) -> None:
    """A kept revision whose .dir manifest is in neither the cache nor the remote: its files
    would look unused, so gc stops (where DVC asks "continue?" on a terminal)."""
    v1_dir = history.git("show", "data@v1.0.0:data/dir.dvc")
    oid = next(line.split()[-1] for line in v1_dir.splitlines() if "md5:" in line)
    for store in (cache(history), history.remote):
        obj(store, oid).chmod(0o644)
        obj(store, oid).unlink()
    before = files_in(cache(history))
    code, _, err = run_cli("gc", "--yes", cwd=history.root)
    assert code == errors.FAILED and "data/dir" in err and "nothing was removed" in err
    assert files_in(cache(history)) == before


def test_orphan_tmp_files_older_than_an_hour_are_removed(history: Repo) -> None:
    """C1.5: half-written .<token>.tmp files of an interrupted transfer, in the cache and the
    remote, are listed and removed; a fresh one (a transfer still running) is left alone."""
    old_cache = cache(history) / "files" / "md5" / "ab" / TMP_NAME
    old_remote = history.remote / "files" / "md5" / "cd" / TMP_NAME
    fresh = cache(history) / "files" / "md5" / "ef" / TMP_NAME
    for p in (old_cache, old_remote, fresh):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * 1000)
    two_hours_ago = time.time() - 7200
    for p in (old_cache, old_remote):
        os.utime(p, (two_hours_ago, two_hours_ago))
    code, out, err = run_cli("gc", "--cloud", cwd=history.root)
    assert code == 0, err
    assert f"ab/{TMP_NAME}  1.0 kB  (temporary file left by a transfer)" in out
    assert f"cd/{TMP_NAME}" in out and f"ef/{TMP_NAME}" not in out
    assert old_cache.exists() and old_remote.exists()
    code, out, err = run_cli("gc", "--cloud", "--yes", "--not-shared", cwd=history.root)
    assert code == 0, err
    assert not old_cache.exists() and not old_remote.exists()
    assert fresh.exists()
    assert not obj(history.remote, md5("v2\n")).exists()


@pytest.mark.slow
def test_promoted_model_survives_cloud_gc_after_its_branch_is_deleted(
    trained: Repo, tmp_path: Path
) -> None:
    """The issue's case (dvc#7496): a model registered and promoted on a branch that is then
    deleted survives ``gc --cloud``; a fresh clone still gets it, md5-verified. The same
    sweep through DVC's default scope (``dvc gc -w -c``) would have removed it."""
    root = trained.root
    trained.git("switch", "-q", "-c", "exp")
    model = root / "models" / "model.skops"
    model.chmod(0o644)
    model.write_bytes(model.read_bytes() + b"\0retrained on exp")
    dvc(root, "commit", "-f")
    trained.git("commit", "-qam", "exp: another model")
    dvc(root, "push")
    exp_md5 = hashlib.md5(model.read_bytes()).hexdigest()
    assert run_cli("model", "register", "model", "--version", "v2.0.0", cwd=root)[0] == 0
    code, _, err = run_cli("model", "promote", "model", "v2.0.0", "--stage", "prod", cwd=root)
    assert code == 0, err
    trained.git("switch", "-q", "main")
    dvc(root, "checkout")
    trained.git("branch", "-D", "exp")
    # An object nothing references: it must go.
    trained.write("scratch.bin", "scratch\n")
    dvc(root, "add", "scratch.bin")
    dvc(root, "push", "scratch.bin.dvc")
    dvc(root, "remove", "scratch.bin.dvc")
    (root / "scratch.bin").unlink()
    scratch = md5("scratch\n")
    assert obj(trained.remote, scratch).exists() and obj(trained.remote, exp_md5).exists()

    # DVC's own scope would take it: check on a copy of the remote.
    copy = tmp_path / "remote-copy"
    shutil.copytree(trained.remote, copy)
    dvc(root, "remote", "add", "--local", "copy", str(copy))
    dvc(root, "gc", "-w", "-c", "-r", "copy", "-f")
    assert not obj(copy, exp_md5).exists()

    code, out, err = run_cli("gc", "--cloud", "--yes", "--not-shared", cwd=root)
    assert code == 0, err
    assert "tag model@v2.0.0" in out and "tag model#prod#1" in out
    assert obj(trained.remote, exp_md5).exists()
    assert not obj(trained.remote, scratch).exists()
    assert not obj(cache(trained), scratch).exists()

    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(root), str(clone))
    (clone / ".dvc" / "config.local").write_text(
        f"[core]\n    remote = local\n['remote \"local\"']\n    url = {trained.remote}\n"
    )
    out_dir = tmp_path / "got"
    code, out, err = run_cli("model", "get", "model#prod", "-o", str(out_dir), cwd=clone)
    assert code == 0, err
    assert f"md5 {exp_md5} verified" in out
    assert hashlib.md5((out_dir / "model.skops").read_bytes()).hexdigest() == exp_md5


def test_the_next_transfer_removes_stale_tmp_files(repo: Repo) -> None:
    """Issue 11's cleanup: after a killed transfer, the next push or pull removes its
    orphans from the cache and a local remote; a fresh one is left to its transfer."""
    stale = [
        cache(repo) / "files" / "md5" / "ab" / TMP_NAME,
        repo.remote / "files" / "md5" / "cd" / TMP_NAME,
    ]
    fresh = repo.remote / "files" / "md5" / "ef" / TMP_NAME
    for p in (*stale, fresh):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"partial")
    for p in stale:
        os.utime(p, (time.time() - 7200, time.time() - 7200))
    repo.write("data/x.txt", "x\n")
    assert run_cli("data", "add", "data/x.txt", cwd=repo.root)[0] == 0
    assert all(p.exists() for p in stale)  # add is not a transfer to a remote
    code, _, err = run_cli("data", "push", cwd=repo.root)
    assert code == 0, err
    assert not any(p.exists() for p in stale) and fresh.exists()
    assert obj(repo.remote, md5("x\n")).exists()
    os.utime(fresh, (time.time() - 7200, time.time() - 7200))
    code, _, err = run_cli("data", "pull", cwd=repo.root)
    assert code == 0, err
    assert not fresh.exists()


@pytest.mark.ssh
def test_gc_cloud_over_ssh_removes_objects_and_stale_tmp(history: Repo, tmp_path: Path) -> None:
    """gc --cloud on a real SSH remote (sshd on 127.0.0.1, dvc-ssh): the dry run lists the
    stale .tmp orphan with its size and removes nothing; with --yes unreferenced objects
    and stale .tmp orphans go, the tagged version and a fresh .tmp stay."""
    from .. import sshd

    with sshd.running(tmp_path / "sshd") as server:
        store = tmp_path / "ssh-remote"
        shutil.copytree(history.remote, store)
        code, _, err = run_cli(
            "remote", "add", "ssh", server.url(store), "--default",
            "--credential", f"keyfile={server.client_key}", cwd=history.root,
        )  # fmt: skip
        assert code == 0, err
        stale, fresh = store / "files/md5/ab" / TMP_NAME, store / "files/md5/cd" / TMP_NAME
        for p in (stale, fresh):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"partial")
        os.utime(stale, (time.time() - 7200, time.time() - 7200))
        code, out, err = run_cli("gc", "--cloud", cwd=history.root)
        assert code == 0, err
        assert f"ab/{TMP_NAME}  7 B  (temporary file left by a transfer)" in out, out
        assert f"cd/{TMP_NAME}" not in out and "--yes" in out
        assert stale.exists() and fresh.exists() and obj(store, md5("v2\n")).exists()
        code, out, err = run_cli("gc", "--cloud", "--yes", "--not-shared", cwd=history.root)
        assert code == 0, err
        assert "Removed from remote 'ssh'" in out and f"ab/{TMP_NAME}" in out
        assert not stale.exists() and fresh.exists()
        assert not obj(store, md5("v2\n")).exists()
        assert obj(store, md5("v1\n")).exists() and obj(store, md5("dir v1 a\n")).exists()


@pytest.mark.parametrize("flag", ["-T", "--all-tags"])
def test_all_tags_keeps_the_data_of_every_tag(history: Repo, flag: str) -> None:
    """A plain (non-registry) tag keeps nothing by default; with -T its commit is kept."""
    history.git("tag", "old-v2", "HEAD~1")
    v2 = f"{md5('v2' + chr(10))[:2]}/{md5('v2' + chr(10))[2:]}"
    code, out, err = run_cli("gc", cwd=history.root)
    assert code == 0, err
    assert v2 in out.split("Would remove")[1]  # the tag alone does not keep v2
    code, out, err = run_cli("gc", flag, "--yes", cwd=history.root)
    assert code == 0, err
    assert "tag old-v2" in out
    assert obj(cache(history), md5("v2\n")).exists()
    assert obj(cache(history), md5("dir v2 a\n")).exists()
    assert not obj(cache(history), md5("never committed\n")).exists()
