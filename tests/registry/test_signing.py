"""Signed promotions (registry.require_signed): SSH-signed stage tags by an allowed key,
checked by ``model get`` and ``serve``; ``gto show`` still reads the tags. Throwaway
ed25519 keys made with ssh-keygen for each test."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from mlopskit import errors
from mlopskit.registry import tags as registry

from .._wait import wait_for
from ..conftest import Repo, run_cli
from ..serve.test_serve import _v2_columns, features, start, stop
from .test_registry import gto_show


def keypair(where: Path, name: str) -> Path:
    key = where / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True
    )
    return key


def test_signed_and_unsigned_promotions(trained: Repo, tmp_path: Path) -> None:
    good, other = keypair(tmp_path, "good"), keypair(tmp_path, "other")
    pub = (good.with_suffix(".pub")).read_text().split()
    trained.write(".github/allowed_signers", f"ops@example.invalid {pub[0]} {pub[1]}\n")
    cfg = (trained.root / "mlopskit.yaml").read_text()
    trained.write("mlopskit.yaml", cfg + "registry:\n  require_signed: [prod]\n")
    trained.git("add", "-A")
    trained.git("commit", "-qm", "prod needs signed promotions")
    registry.register(trained.project(), "model", version="v1.0.0", rev="HEAD~1")
    out = tmp_path / "out"

    def promote(key: Path | None) -> None:
        time.sleep(1.1)  # GTO orders events by their second: after the unassignment
        args = ["model", "promote", "model", "v1.0.0", "--stage", "prod"]
        if key is not None:
            trained.git("config", "user.signingkey", str(key))
            args.append("--sign")
        code, stdout, err = run_cli(*args, cwd=trained.root)
        assert code == 0, err

    # Unsigned: refused by model get and by serve (exit 5), naming the tag.
    promote(None)
    code, _, err = run_cli("model", "get", "model#prod", "-o", str(out), cwd=trained.root)
    assert code == errors.INTEGRITY and "model#prod#1" in err and "is not signed" in err
    assert not out.exists() or not any(out.iterdir())
    code, _, err = run_cli("serve", "model#prod", cwd=trained.root)
    assert code == errors.INTEGRITY and "is not signed" in err
    # deploy.yml starts with describe-tag on the pushed tag: refused there too.
    code, said, err = run_cli("model", "describe-tag", "model#prod#1", cwd=trained.root)
    assert code == errors.INTEGRITY and "is not signed" in err and "version=" not in said
    # The version itself is not a stage: fetching it by version is not affected.
    assert run_cli("model", "get", "model@v1.0.0", "-o", str(out), cwd=trained.root)[0] == 0
    (out / "model.skops").unlink()
    # Signed by the allowed key: accepted.
    assert run_cli("model", "unpromote", "model", "--stage", "prod", cwd=trained.root)[0] == 0
    promote(good)
    tag = trained.git("tag", "-l", "model#prod#*").split()[-1]
    assert "-----BEGIN SSH SIGNATURE-----" in trained.git("cat-file", "tag", tag)
    code, stdout, err = run_cli("model", "get", "model#prod", "-o", str(out), cwd=trained.root)
    assert code == 0, err
    assert (out / "model.skops").is_file()
    code, stdout, err = run_cli("model", "describe-tag", tag, cwd=trained.root)
    assert code == 0 and "version=v1.0.0" in stdout, err
    shown = gto_show(trained.root)
    assert shown["model"]["stage"]["prod"] == "v1.0.0"  # type: ignore[index]
    # Signed by a key that is not in the allowed signers: refused.
    assert run_cli("model", "unpromote", "model", "--stage", "prod", cwd=trained.root)[0] == 0
    promote(other)
    code, _, err = run_cli(
        "model", "get", "model#prod", "-o", str(tmp_path / "o2"), cwd=trained.root
    )
    assert code == errors.INTEGRITY
    assert "not signed by a key in .github/allowed_signers" in err
    # Stages not listed in require_signed need no signature.
    assert (
        run_cli("model", "promote", "model", "v1.0.0", "--stage", "dev", cwd=trained.root)[0] == 0
    )
    assert (
        run_cli("model", "get", "model#dev", "-o", str(tmp_path / "o3"), cwd=trained.root)[0] == 0
    )


def _open_request(url: str, path: str, body: bytes, first: int) -> socket.socket:
    """Send a request's headers and the first ``first`` bytes of its body, and no more:
    the server has started answering it (uvicorn runs the app once the headers are in)
    and waits for the rest, as it would for a slow client."""
    port = int(url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    sock.sendall(head.encode() + body[:first])
    return sock


def _finish_request(sock: socket.socket, rest: bytes) -> tuple[int, Any]:
    sock.sendall(rest)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


@pytest.mark.slow
def test_follow_refuses_an_unsigned_new_version_and_swaps_in_the_signed_one(
    trained: Repo, tmp_path: Path
) -> None:
    """A real server following a signed prod at v1.0.0. prod moves to v2.0.0 by an unsigned
    tag: refused, counted, logged; v1.0.0 keeps answering. Then a signed promotion of
    v2.0.0 is swapped in, and a request that started before the swap (its body still
    arriving) is answered by v1.0.0, the model it started on."""
    good = keypair(tmp_path, "good")
    pub = good.with_suffix(".pub").read_text().split()
    trained.write(".github/allowed_signers", f"ops@example.invalid {pub[0]} {pub[1]}\n")
    cfg = (trained.root / "mlopskit.yaml").read_text()
    cfg = cfg.replace("\nserve:\n", "\nserve:\n  follow_seconds: 0.3\n")
    trained.write("mlopskit.yaml", cfg + "registry:\n  require_signed: [prod]\n")
    trained.git("add", "-A")
    trained.git("commit", "-qm", "prod needs signed promotions")
    registry.register(trained.project(), "model", version="v1.0.0", rev="HEAD~1")
    registry.register(trained.project(), "model", version="v2.0.0")
    trained.git("config", "user.signingkey", str(good))
    registry.promote(trained.project(), "model", "v1.0.0", "prod", sign=True)
    srv = start(trained.root, "model#prod", "--follow", log_dir=tmp_path / "log", token=None)
    frame = features(trained.root).head(3)
    body = json.dumps(_v2_columns(frame)).encode()
    try:
        meta = srv.json("GET", "/metadata")[1]
        assert (meta["version"], meta["stage"], meta["follow"]) == ("v1.0.0", "prod", True)
        time.sleep(1.1)  # GTO orders events by their second
        registry.promote(trained.project(), "model", "v2.0.0", "prod")  # unsigned
        assert registry.resolve(trained.root, "model#prod")[1] == "v2.0.0"
        wait_for(
            lambda: "mlopskit_serve_follow_failures_total 1.0" in srv.metrics(),
            30,
            "the unsigned promotion of v2.0.0 refused",
        )
        time.sleep(1.0)  # more rounds: still refused, counted once, v1.0.0 serving
        assert "mlopskit_serve_follow_failures_total 1.0" in srv.metrics()
        assert srv.json("GET", "/metadata")[1]["version"] == "v1.0.0"
        code, out = srv.json("POST", "/v2/models/model/infer", json.loads(body))
        assert code == 200 and out["model_version"] == "v1.0.0"
        # A request in flight across the swap.
        sock = _open_request(srv.url, "/v2/models/model/infer", body, 20)
        registry.unpromote(trained.project(), "model", "prod")  # v2.0.0 is in prod already
        time.sleep(1.1)
        registry.promote(trained.project(), "model", "v2.0.0", "prod", sign=True)
        meta = wait_for(
            lambda: (m := srv.json("GET", "/metadata")[1])["version"] == "v2.0.0" and m,
            30,
            "the signed promotion of v2.0.0 swapped in",
        )
        assert meta["commit"] == trained.head()
        code, out = _finish_request(sock, body[20:])
        assert code == 200 and out["model_version"] == "v1.0.0"  # the model it started on
        code, out = srv.json("POST", "/v2/models/model/infer", json.loads(body))
        assert code == 200 and out["model_version"] == "v2.0.0"
        text = srv.metrics()
        assert "mlopskit_serve_model_swaps_total 1.0" in text
        assert "mlopskit_serve_follow_failures_total 1.0" in text
        assert 'stage="prod",version="v2.0.0"} 1.0' in text
        assert 'stage="prod",version="v1.0.0"} 0.0' in text
    finally:
        out = stop(srv)
    assert out.count("follow: refused:") == 1 and "is not signed" in out, out
    assert "still serving v1.0.0" in out
    assert "follow: model v1.0.0 -> v2.0.0" in out
    # The prediction log says which model answered each request.
    versions = [
        json.loads(line)["version"]
        for p in sorted((tmp_path / "log").glob("predictions-*.jsonl"))
        for line in p.read_text().splitlines()
    ]
    assert versions == ["v1.0.0"] * 6 + ["v2.0.0"] * 3
