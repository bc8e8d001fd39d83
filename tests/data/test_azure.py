"""Azure Blob Storage through dvc-azure, against Azurite (npm's ``azurite``) on 127.0.0.1:
push, pull, ``repro --pull --push`` in a fresh clone, gc --cloud, model get and a push
killed mid-upload; the connection string comes only from the environment or
.dvc/config.local and never appears in output or committed files.

A stopped server: the Azure SDK alone retries a refused connection for minutes (its
backoff cannot be set through DVC); mlopskit's gateway checks the endpoint first
(``_dvc.check_endpoint``), so push, pull and commit --push's remote check give
exit 4 after a few tries. The test runs them as processes under a timeout: a hang fails it.

``.ci/run`` installs Azurite with npm into ``.ci/node``; elsewhere put ``azurite-blob`` on
PATH (``npm install azurite``) or the test is skipped, saying so. In CI it fails instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlopskit import errors

from ..conftest import Repo, dvc, git, run_cli, run_subprocess
from ..s3 import _free_port
from . import ct_runner

# Azurite's documented development account (the same on every machine, yet a secret here).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary() -> str:
    local = Path(__file__).resolve().parents[2] / ".ci" / "node" / "node_modules" / ".bin"
    found = shutil.which("azurite-blob") or shutil.which("azurite-blob", path=str(local))
    if found:
        return found
    msg = "azurite-blob not found (npm install azurite; .ci/run installs it into .ci/node)"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@dataclass
class Azurite:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{ACCOUNT};"
        )

    def service(self):  # type: ignore[no-untyped-def]
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def container(self) -> str:
        name = f"c-{uuid.uuid4().hex[:12]}"
        self.service().create_container(name)
        return name

    def blobs(self, container: str) -> dict[str, int]:
        client = self.service().get_container_client(container)
        return {b.name: int(b.size) for b in client.list_blobs()}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def start_azurite(location: Path, port: int | None = None) -> Azurite:
    binary = azurite_binary()
    port = port or _free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(location),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return Azurite(port, proc)
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("Azurite did not start")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    server = start_azurite(tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


def use_azure(root: Path, server: Azurite, container: str, *, creds_local: bool) -> list[str]:
    creds = ["--credential", f"connection_string={server.connection_string}"] if creds_local else []
    code, out, err = run_cli(
        "remote", "add", "az", f"azure://{container}/store", "--default", *creds, cwd=root
    )
    assert code == 0, err
    return [out, err]


def no_secret_anywhere(root: Path, *outputs: str) -> None:
    for text in outputs:
        assert KEY not in text
    assert KEY not in git(root, "log", "-p", "--all")
    assert KEY not in (root / ".dvc" / "config").read_text()
    for rel in filter(None, git(root, "ls-files", "-z").split("\0")):
        p = root / rel
        if p.is_file():
            assert KEY.encode() not in p.read_bytes(), rel


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.mark.parametrize(
    "creds_local",
    [pytest.param(False, id="env"), pytest.param(True, id="config.local", marks=pytest.mark.slow)],
)
def test_push_pull_and_gc_against_azurite(
    repo: Repo, azurite: Azurite, monkeypatch: pytest.MonkeyPatch, creds_local: bool
) -> None:
    if creds_local:
        monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    else:
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    container = azurite.container()
    outputs = use_azure(repo.root, azurite, container, creds_local=creds_local)
    assert (KEY in (repo.root / ".dvc" / "config.local").read_text()) is creds_local
    repo.git("add", ".dvc/config")
    repo.git("commit", "-qm", "azure remote")

    def cli(*args: str) -> tuple[int, str, str]:
        code, out, err = run_cli(*args, cwd=repo.root)
        outputs.extend([out, err])
        return code, out, err

    repo.write("data/d.csv", "a,b\n1,2\n")
    assert cli("data", "add", "data/d.csv")[0] == 0
    code, out, err = cli("data", "push")
    assert code == 0, err
    v1 = md5(b"a,b\n1,2\n")
    assert f"store/files/md5/{v1[:2]}/{v1[2:]}" in azurite.blobs(container)
    (repo.root / "data" / "d.csv").unlink()
    shutil.rmtree(repo.root / ".dvc" / "cache")
    code, out, err = cli("data", "pull")
    assert code == 0, err
    assert (repo.root / "data" / "d.csv").read_text() == "a,b\n1,2\n"

    repo.write("data/d.csv", "a,b\n3,4\n")
    assert cli("data", "add", "data/d.csv")[0] == 0
    assert cli("data", "push")[0] == 0
    code, out, err = cli("gc", "--cloud", "--yes", "--not-shared")
    assert code == 0, err
    assert "Removed from remote 'az'" in out
    blobs = azurite.blobs(container)
    v2 = md5(b"a,b\n3,4\n")
    assert f"store/files/md5/{v1[:2]}/{v1[2:]}" not in blobs
    assert f"store/files/md5/{v2[:2]}/{v2[2:]}" in blobs
    assert "in sync" in dvc(repo.root, "status", "-c").stdout
    no_secret_anywhere(repo.root, *outputs)


@pytest.mark.slow
def test_model_get_from_azurite(
    trained: Repo, azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    root = trained.root
    outputs = use_azure(root, azurite, azurite.container(), creds_local=False)
    trained.git("add", ".dvc/config")
    trained.git("commit", "-qm", "remote: azure")
    code, out, err = run_cli("data", "push", cwd=root)
    assert code == 0, err
    assert run_cli("model", "register", "model", "--version", "v1.0.0", cwd=root)[0] == 0
    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(root), str(clone))
    got = tmp_path / "got"
    code, out, err = run_cli("model", "get", "model@v1.0.0", "-o", str(got), cwd=clone)
    assert code == 0, err
    outputs += [out, err]
    assert md5((got / "model.skops").read_bytes()) == md5(
        (root / "models" / "model.skops").read_bytes()
    )
    no_secret_anywhere(root, *outputs)


@pytest.mark.slow
def test_repro_pull_push_in_a_fresh_clone_on_azurite(
    trained: Repo, azurite: Azurite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What CT does on a runner, against Azurite: a fresh clone (no cache, no outputs) of
    a commit that changed a training param. ``repro --pull --push`` fetches only what the
    stages that rerun read (train.csv, test.csv), trains, and uploads the new model and
    nothing else; the unchanged stages' data stays in the container, not fetched."""
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    root = trained.root
    container = azurite.container()
    outputs = use_azure(root, azurite, container, creds_local=False)
    trained.git("add", ".dvc/config")
    trained.git("commit", "-qm", "remote: azure")
    trip = ct_runner.repro_pull_push_in_a_fresh_clone(
        trained, tmp_path, lambda: azurite.blobs(container), "az"
    )
    key = ct_runner.object_key(trip.new[ct_runner.MODEL])
    blob = azurite.service().get_blob_client(container, key)
    assert ct_runner.md5(blob.download_blob().readall()) == trip.new[ct_runner.MODEL]
    no_secret_anywhere(trip.runner, *outputs, *trip.outputs)


@pytest.mark.slow
def test_a_push_killed_mid_upload_leaves_no_partial_blob(
    repo: Repo, azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGKILL ``mlopskit data push`` while a block blob is being uploaded (timed on
    Azurite showing its staged, uncommitted blocks): a block blob exists only once its
    block list is committed, so no object of the wrong size or content appears, DVC sees
    the file as not pushed; the rerun uploads it whole and the remote is in sync."""
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    container = azurite.container()
    use_azure(repo.root, azurite, container, creds_local=False)
    big = repo.root / "data" / "big.bin"
    big.parent.mkdir(parents=True)
    with big.open("wb") as fh:
        for _ in range(80):  # over the SDK's 64 MiB single-put limit: uploaded in blocks
            fh.write(os.urandom(1 << 20))
    assert run_cli("data", "add", "data/big.bin", cwd=repo.root)[0] == 0
    oid = md5(big.read_bytes())
    key = ct_runner.object_key(oid)
    blob = azurite.service().get_blob_client(container, key)
    from azure.core.exceptions import ResourceNotFoundError

    proc = subprocess.Popen(
        [sys.executable, "-m", "mlopskit", "data", "push"],
        cwd=repo.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    staged: list[object] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            staged = blob.get_block_list("uncommitted")[1]
        except ResourceNotFoundError:
            staged = []
        if staged:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert staged, "the push finished before it could be interrupted"
    assert proc.returncode == -signal.SIGKILL
    # Half the bytes are on the server, none of them as an object.
    assert key not in azurite.blobs(container)
    assert "new:" in dvc(repo.root, "status", "-c").stdout
    assert md5(big.read_bytes()) == oid

    code, out, err = run_cli("data", "push", cwd=repo.root)
    assert code == 0, err
    assert "1 file(s) pushed to 'az'" in out
    assert azurite.blobs(container)[key] == big.stat().st_size
    assert md5(blob.download_blob().readall()) == oid
    committed, uncommitted = blob.get_block_list("all")
    assert committed and not uncommitted  # the killed upload's blocks went with the commit
    assert "in sync" in dvc(repo.root, "status", "-c").stdout
    assert md5(big.read_bytes()) == oid


# A guard against a hang, not a measure: without the endpoint check a push to a stopped
# Azurite took about 4 minutes (the SDK's 15 s, 18 s, 24 s backoff on every request).
HANG = 150


def cli_process(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return run_subprocess(*args, cwd=root, timeout=HANG)
    except subprocess.TimeoutExpired:
        pytest.fail(f"'mlopskit {' '.join(args)}' still running after {HANG} s: it hangs")


@pytest.mark.slow
def test_a_stopped_azurite_is_exit_4_naming_the_remote(
    repo: Repo, origin: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """C4.40 on Azure: push, pull (a fresh clone) and commit --push's remote check against
    a killed Azurite give exit 4 with one line naming the remote, the endpoint and the fix;
    nothing local changes, nothing reaches origin; after a restart the same commands work."""
    location = tmp_path / "azurite"
    server = start_azurite(location)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", server.connection_string)
    container = server.container()
    use_azure(repo.root, server, container, creds_local=False)
    repo.git("add", ".dvc/config")
    repo.git("commit", "-qm", "azure remote")
    repo.git("remote", "add", "origin", str(origin))
    repo.git("push", "-q", "-u", "origin", "HEAD:main")
    repo.write("data/d.csv", "v,1\n")
    assert run_cli("data", "add", "data/d.csv", cwd=repo.root)[0] == 0
    assert run_cli("data", "push", cwd=repo.root)[0] == 0
    assert run_cli("commit", "--push", cwd=repo.root)[0] == 0
    published = git(origin, "rev-parse", "main").strip()
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    v2 = b"v,2\n"
    repo.write("data/d.csv", v2.decode())
    assert run_cli("data", "add", "data/d.csv", cwd=repo.root)[0] == 0  # commits, locally

    server.stop()  # SIGTERM, so that Azurite keeps its blobs for the restart below
    before, head = repo.status(), repo.head()
    cache = sorted(p.name for p in (repo.root / ".dvc" / "cache").rglob("*") if p.is_file())
    where = f"Azure remote 'az' (azure://{container}/store): nothing answers at 127.0.0.1:"
    runs = [(repo.root, "data", "push"), (clone, "data", "pull"), (repo.root, "commit", "--push")]
    for cwd, *args in runs:
        res = cli_process(cwd, *args)
        assert res.returncode == errors.REMOTE, (args, res.stdout, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1, (args, res.stderr)
        assert where + f"{server.port} (connection refused, 3 tries)" in lines[0], lines
        assert "check the remote URL, network and credentials" in lines[0], lines
        assert "Traceback" not in res.stdout + res.stderr
        no_secret_anywhere(repo.root, res.stdout, res.stderr)
    # Nothing lost, nothing published that the remote lacks.
    assert repo.status() == before and repo.head() == head
    assert md5((repo.root / "data" / "d.csv").read_bytes()) == md5(v2)
    assert sorted(p.name for p in (repo.root / ".dvc" / "cache").rglob("*") if p.is_file()) == cache
    assert git(origin, "rev-parse", "main").strip() == published
    assert not (clone / "data" / "d.csv").exists()
    assert not [p for p in clone.rglob("*.tmp") if p.is_file()]

    # The server back on its port: the same commands complete.
    server = start_azurite(location, server.port)
    try:
        for cwd, *args in runs:
            res = cli_process(cwd, *args)
            assert res.returncode == 0, (args, res.stdout, res.stderr)
        blobs = server.blobs(container)
        assert f"store/files/md5/{md5(v2)[:2]}/{md5(v2)[2:]}" in blobs
        assert git(origin, "rev-parse", "main").strip() == repo.head()
        assert (clone / "data" / "d.csv").read_text() == "v,1\n"
    finally:
        server.stop()


def test_the_endpoint_check_is_installed_on_dvcs_azure_file_system(tmp_path: Path) -> None:
    """The gateway's two hooks (``_dvc._install_endpoint_probes``) sit where dvc-azure and
    DVC put what they wrap: ``AzureFileSystem.fs`` builds adlfs' client on first use, and
    ``DataCloud.get_remote(name, command)`` makes a remote's file system. Against a port
    nothing listens on, the first use fails at once, naming the endpoint, and again on the
    next use without a second round of tries."""
    import inspect

    import dvc.data_cloud as dvc_cloud
    from dvc_azure import AzureFileSystem

    from mlopskit import _dvc

    params = list(inspect.signature(dvc_cloud.DataCloud.get_remote).parameters)
    assert params[:3] == ["self", "name", "command"], params
    assert "fs" in AzureFileSystem.__dict__
    git(tmp_path, "init", "-q")
    dvc(tmp_path, "init", "-q")
    with _dvc.open_repo(tmp_path):
        assert getattr(AzureFileSystem.__dict__["fs"], "_mlopskit", False)
        assert getattr(dvc_cloud.DataCloud.get_remote, "_mlopskit", False)
    port = _free_port()
    dead = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )
    fs = AzureFileSystem(connection_string=dead)
    for _ in range(2):
        with pytest.raises(_dvc.EndpointUnreachable) as caught:
            fs.exists("c/x")
        text = str(caught.value)
        assert text.startswith("the Azure remote: nothing answers at ")
        assert f"nothing answers at 127.0.0.1:{port} (connection refused, 3 tries)" in text
    assert "fs" not in fs.__dict__  # no client handed out for a dead endpoint
