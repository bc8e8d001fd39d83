"""Azure Blob Storage through dvc-azure, against Azurite (npm's ``azurite``) on 127.0.0.1:
push, pull, gc --cloud and model get; the connection string comes only from the
environment or .dvc/config.local and never appears in output or committed files.

Not here: a stopped server. The Azure SDK retries a refused connection with its own
exponential backoff (about 15 s, 45 s, ...) for every request, and DVC's azure config has
no setting for it, so a push to a dead Azurite took about 9 minutes to reach exit 4.

``.ci/run`` installs Azurite with npm into ``.ci/node``; elsewhere put ``azurite-blob`` on
PATH (``npm install azurite``) or the test is skipped, saying so. In CI it fails instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import Repo, dvc, git, run_cli
from .s3 import _free_port

# Azurite's documented development account (the same on every machine, yet a secret here).
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary() -> str:
    local = Path(__file__).resolve().parent.parent / ".ci" / "node" / "node_modules" / ".bin"
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


def start_azurite(location: Path) -> Azurite:
    binary = azurite_binary()
    port = _free_port()
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
