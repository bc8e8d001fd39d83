"""Signed promotions (registry.require_signed): SSH-signed stage tags by an allowed key,
checked by ``model get`` and ``serve``; ``gto show`` still reads the tags. Throwaway
ed25519 keys made with ssh-keygen for each test."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from mlopskit import errors
from mlopskit.registry import tags as registry

from ..conftest import Repo, run_cli
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


def test_follow_refuses_an_unsigned_reassignment(trained: Repo, tmp_path: Path) -> None:
    """serve --follow's check: a signed prod keeps serving; an unsigned reassignment of
    prod is refused, counted, and the model in memory stays."""
    import threading

    from mlopskit.serve.app import Settings, make_state
    from mlopskit.serve.follow import Follower

    good = keypair(tmp_path, "good")
    pub = good.with_suffix(".pub").read_text().split()
    trained.write(".github/allowed_signers", f"ops@example.invalid {pub[0]} {pub[1]}\n")
    cfg = (trained.root / "mlopskit.yaml").read_text()
    trained.write("mlopskit.yaml", cfg + "registry:\n  require_signed: [prod]\n")
    trained.git("add", "-A")
    trained.git("commit", "-qm", "prod needs signed promotions")
    registry.register(trained.project(), "model", version="v1.0.0", rev="HEAD~1")
    trained.git("config", "user.signingkey", str(good))
    registry.promote(trained.project(), "model", "v1.0.0", "prod", sign=True)
    settings = Settings(root=str(trained.root), spec="model#prod", follow=True)
    state = make_state(settings)
    follower = Follower(settings, state, threading.Event())
    assert follower.check(trained.project()) is None  # nothing moved
    assert state.follow_failures._value.get() == 0
    registry.unpromote(trained.project(), "model", "prod")
    time.sleep(1.1)  # GTO orders events by their second
    registry.promote(trained.project(), "model", "v1.0.0", "prod")  # unsigned
    assert follower.check(trained.project()) is None
    assert follower.check(trained.project()) is None  # refused once, counted once
    assert state.follow_failures._value.get() == 1
    assert state.live.served.target.version == "v1.0.0"
