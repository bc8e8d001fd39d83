"""A real S3-compatible server on 127.0.0.1 (moto's standalone server) through dvc-s3:
push, pull, ``repro --pull --push`` in a fresh clone, model get, gc and a push killed
mid-upload; credentials only from the environment or .dvc/config.local, never in output
or committed files; a stopped server is exit 4 within seconds (the gateway's endpoint
check, ``_dvc.check_endpoint``), with botocore's default retry settings.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlopskit import errors

from ..conftest import Repo, dvc, git, run_cli, run_subprocess
from ..s3 import KEY_ID, SECRET, S3Server, no_aws_credentials, start_server
from . import ct_runner


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials from the environment only (as CI passes a secret to one step)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)


def use_s3(root: Path, server: S3Server, bucket: str, *, creds_local: bool = False) -> None:
    """The S3 remote as the default; the endpoint in .dvc/config (not a secret)."""
    creds = (
        ["--credential", f"access_key_id={KEY_ID}", "--credential", f"secret_access_key={SECRET}"]
        if creds_local
        else []
    )
    code, out, err = run_cli(
        "remote", "add", "s3", f"s3://{bucket}/store", "--default", *creds, cwd=root
    )
    assert code == 0, err
    assert SECRET not in out + err
    dvc(root, "remote", "modify", "s3", "endpointurl", server.endpoint)


def no_secret_anywhere(root: Path, *outputs: str) -> None:
    for text in outputs:
        assert SECRET not in text and KEY_ID not in text
    history = git(root, "log", "-p", "--all")
    assert SECRET not in history and KEY_ID not in history
    assert SECRET not in (root / ".dvc" / "config").read_text()
    tracked = git(root, "ls-files", "-z").split("\0")
    for rel in filter(None, tracked):
        p = root / rel
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes(), rel


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_push_pull_and_gc_against_s3(repo: Repo, s3_server: S3Server, aws_env: None) -> None:
    bucket = s3_server.bucket()
    use_s3(repo.root, s3_server, bucket)
    repo.git("add", ".dvc/config")
    repo.git("commit", "-qm", "s3 remote")
    outputs: list[str] = []

    def cli(*args: str) -> tuple[int, str, str]:
        code, out, err = run_cli(*args, cwd=repo.root)
        outputs.extend([out, err])
        return code, out, err

    repo.write("data/d.csv", "a,b\n1,2\n")
    assert cli("data", "add", "data/d.csv")[0] == 0
    code, out, err = cli("data", "push")
    assert code == 0, err
    assert "1 file(s) pushed to 's3'" in out
    v1 = md5(b"a,b\n1,2\n")
    assert f"store/files/md5/{v1[:2]}/{v1[2:]}" in s3_server.keys(bucket)

    # Round trip: no workspace copy, no cache.
    (repo.root / "data" / "d.csv").unlink()
    shutil.rmtree(repo.root / ".dvc" / "cache")
    code, out, err = cli("data", "pull")
    assert code == 0, err
    assert (repo.root / "data" / "d.csv").read_text() == "a,b\n1,2\n"
    assert "in sync" in dvc(repo.root, "status", "-c").stdout

    # gc --cloud on S3: the old version goes, the current one stays.
    repo.write("data/d.csv", "a,b\n3,4\n")
    assert cli("data", "add", "data/d.csv")[0] == 0
    assert cli("data", "push")[0] == 0
    v2 = md5(b"a,b\n3,4\n")
    code, out, err = cli("gc", "--cloud", "--commits", "1")
    assert code == 0, err
    assert f"Would remove from remote 's3' (s3://{bucket}/store)" in out and v1[2:] in out
    assert f"store/files/md5/{v1[:2]}/{v1[2:]}" in s3_server.keys(bucket)
    code, out, err = cli("gc", "--cloud", "--yes", "--not-shared")
    assert code == 0, err
    keys = s3_server.keys(bucket)
    assert f"store/files/md5/{v1[:2]}/{v1[2:]}" not in keys
    assert f"store/files/md5/{v2[:2]}/{v2[2:]}" in keys
    assert "in sync" in dvc(repo.root, "status", "-c").stdout
    no_secret_anywhere(repo.root, *outputs)


def test_credentials_from_config_local(
    repo: Repo, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No AWS variables at all: the keys come from .dvc/config.local, which git ignores."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(repo.root / "no-such-file"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(repo.root / "no-such-file"))
    bucket = s3_server.bucket()
    use_s3(repo.root, s3_server, bucket, creds_local=True)
    assert SECRET in (repo.root / ".dvc" / "config.local").read_text()
    repo.write("data/x.txt", "x\n")
    code, out1, err1 = run_cli("data", "add", "data/x.txt", cwd=repo.root)
    assert code == 0, err1
    code, out2, err2 = run_cli("data", "push", cwd=repo.root)
    assert code == 0, err2
    assert len(s3_server.keys(bucket)) == 1
    code, out3, err3 = run_cli("remote", "list", cwd=repo.root)
    assert code == 0 and "secret_access_key=***" in out3
    # gc reads older commits, whose .dvc/config has no 's3' url; the key in config.local
    # alone must not make them unreadable.
    code, out4, err4 = run_cli("gc", "--cloud", "--commits", "5", cwd=repo.root)
    assert code == 0, err4
    assert "Nothing to remove from the cache or the remote." in out4
    repo.git("add", "-A")
    repo.git("commit", "-qm", "remote")
    no_secret_anywhere(repo.root, out1, err1, out2, err2, out3, err3, out4, err4)


# A guard against a hang, not a measure: with botocore's default retries and no endpoint
# check, push, pull and gc --cloud against the stopped server took 29 s, 31 s and 43 s.
HANG = 60
BOUND = 20  # seconds: the gateway's endpoint check (3 tries) under mlopskit's 2 retries


@pytest.mark.slow
def test_a_stopped_server_is_exit_4(repo: Repo, aws_env: None) -> None:
    """C4.40 on S3, with botocore's default retry settings: the gateway checks the
    ``endpointurl`` before DVC's first request, so push, pull and gc --cloud give exit 4
    within seconds, one line naming the remote and the endpoint; local state unchanged;
    no secret."""
    assert "AWS_MAX_ATTEMPTS" not in os.environ and "AWS_RETRY_MODE" not in os.environ
    server = start_server()
    try:
        bucket = server.bucket()
        use_s3(repo.root, server, bucket)
        repo.write("data/y.txt", "y\n")
        assert run_cli("data", "add", "data/y.txt", cwd=repo.root)[0] == 0
    finally:
        server.stop()
    port = server.endpoint.rsplit(":", 1)[1]
    where = f"S3 remote 's3' (s3://{bucket}/store): nothing answers at 127.0.0.1:{port}"
    before = repo.status()
    cache = sorted(p.name for p in (repo.root / ".dvc" / "cache").rglob("*"))
    for args in (["data", "push"], ["data", "pull"], ["gc", "--cloud"]):
        started = time.monotonic()
        try:
            res = run_subprocess(*args, cwd=repo.root, timeout=HANG)
        except subprocess.TimeoutExpired:
            pytest.fail(f"'mlopskit {' '.join(args)}' still running after {HANG} s: it hangs")
        took = time.monotonic() - started
        code, out, err = res.returncode, res.stdout, res.stderr
        assert code == errors.REMOTE, (args, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, (args, err)
        assert where + " (connection refused, 3 tries)" in lines[0], (args, lines)
        assert "Traceback" not in out + err
        assert took < BOUND, (args, took)
        no_secret_anywhere(repo.root, out, err)
    assert repo.status() == before
    assert sorted(p.name for p in (repo.root / ".dvc" / "cache").rglob("*")) == cache


@pytest.mark.slow
def test_repro_pull_push_and_model_get_on_s3(
    trained: Repo, s3_server: S3Server, aws_env: None, tmp_path: Path
) -> None:
    """A CT runner on S3: a fresh clone (no cache, no outputs) of a commit that changed a
    training param. ``repro --pull --push`` fetches only what the stages that rerun read,
    trains and uploads the new model, nothing else; the model registered there and
    promoted is what ``model get`` brings to another fresh clone, md5-checked."""
    root = trained.root
    bucket = s3_server.bucket()
    use_s3(root, s3_server, bucket)
    trained.git("add", ".dvc/config")
    trained.git("commit", "-qm", "remote: s3")
    trip = ct_runner.repro_pull_push_in_a_fresh_clone(
        trained, tmp_path, lambda: s3_server.keys(bucket), "s3"
    )
    runner, new, model, outputs = trip.runner, trip.new, ct_runner.MODEL, trip.outputs

    code, out, err = run_cli("commit", "-m", "train: C=0.5", cwd=runner)
    assert code == 0, err
    code, out, err = run_cli("model", "register", "model", "--version", "v1.1.0", cwd=runner)
    assert code == 0, err  # registration checks the model is in the S3 remote
    assert run_cli("model", "promote", "model", "v1.1.0", "--stage", "prod", cwd=runner)[0] == 0
    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(runner), str(clone))
    assert not (clone / ".dvc" / "config.local").exists()
    got = tmp_path / "got"
    code, out, err = run_cli("model", "get", "model#prod", "-o", str(got), cwd=clone)
    assert code == 0, err
    outputs += [out, err]
    fetched = (got / "model.skops").read_bytes()
    assert md5(fetched) == new[model]
    assert f"md5 {new[model]} verified" in out
    no_secret_anywhere(runner, *outputs)
    no_secret_anywhere(clone)


@pytest.mark.slow
def test_an_interrupted_upload_leaves_the_remote_consistent(
    repo: Repo, s3_server: S3Server, aws_env: None
) -> None:
    """SIGKILL ``mlopskit data push`` in the middle of a multipart upload: S3 publishes an
    object only when its upload completes, so no object of the wrong size appears; the
    rerun uploads it and the remote is in sync."""
    bucket = s3_server.bucket()
    use_s3(repo.root, s3_server, bucket)
    big = repo.root / "data" / "big.bin"
    big.parent.mkdir(parents=True)
    with big.open("wb") as fh:
        for _ in range(120):  # over s3fs's 50 MB part size: a multipart upload
            fh.write(os.urandom(1 << 20))
    assert run_cli("data", "add", "data/big.bin", cwd=repo.root)[0] == 0
    oid = md5(big.read_bytes())
    key = f"store/files/md5/{oid[:2]}/{oid[2:]}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlopskit", "data", "push"],
        cwd=repo.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = s3_server.client()
    deadline = time.monotonic() + 60
    in_flight = False
    while time.monotonic() < deadline and proc.poll() is None:
        if client.list_multipart_uploads(Bucket=bucket).get("Uploads"):
            in_flight = True
            break
        time.sleep(0.02)
    proc.kill()
    proc.wait(10)
    assert in_flight, "the push finished before it could be interrupted"
    assert proc.returncode == -signal.SIGKILL
    # Parts may be on the server, none of them as an object; DVC sees the file as not pushed.
    assert key not in s3_server.keys(bucket)
    assert "new:" in dvc(repo.root, "status", "-c").stdout
    assert md5(big.read_bytes()) == oid
    code, out, err = run_cli("data", "push", cwd=repo.root)
    assert code == 0, err
    assert s3_server.keys(bucket)[key] == big.stat().st_size
    assert "in sync" in dvc(repo.root, "status", "-c").stdout
    # The killed upload's parts are still stored; gc aborts unfinished uploads once they
    # are an hour old (a younger one may be a running push's). moto dates every upload
    # 2010-11-10, so here it is old at once; the age rule is the one .tmp files follow.
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    code, out, err = run_cli("gc", "--cloud", cwd=repo.root)
    assert code == 0, err
    assert f"{oid[:2]}/{oid[2:]}  (unfinished multipart upload" in out
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    code, out, err = run_cli("gc", "--cloud", "--yes", "--not-shared", cwd=repo.root)
    assert code == 0, err
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert s3_server.keys(bucket)[key] == big.stat().st_size
    assert "in sync" in dvc(repo.root, "status", "-c").stdout


def test_missing_credentials_are_exit_4_naming_them(
    repo: Repo, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No key pair anywhere (as a CI step without the secrets): one line, exit 4, the
    variables to set; never the "bug" exit code with botocore's traceback."""
    bucket = s3_server.bucket()
    use_s3(repo.root, s3_server, bucket)
    no_aws_credentials(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    repo.write("data/d.csv", "a,b\n1,2\n")
    assert run_cli("data", "add", "data/d.csv", cwd=repo.root)[0] == 0
    code, out, err = run_cli("data", "push", cwd=repo.root)
    assert code == 4, (out, err)
    assert "AWS_ACCESS_KEY_ID" in err and "Traceback" not in err and "bug" not in err
    assert s3_server.keys(bucket) == {}
