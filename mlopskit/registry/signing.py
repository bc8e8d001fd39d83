"""Signed promotions: ``registry.require_signed: [prod]`` makes a stage trusted only when
the tag that assigned it is an SSH-signed annotated tag (``model promote --sign``, git's
``gpg.format ssh``) by a key listed in the repository's allowed-signers file
(``registry.allowed_signers``, git's ``gpg.ssh.allowedSignersFile`` format, reviewed in
pull requests). ``model get``, ``serve`` and ``serve --follow`` refuse anything else
(exit 5). The tags stay GTO's format: ``gto show`` reads signed tags as any others.
"""

from __future__ import annotations

from pathlib import Path

from .. import scm
from ..errors import IntegrityError, UsageError
from ..project import Project
from . import tags as registry


def assignment_tag(root: Path, artifact: str, stage: str) -> str | None:
    """The tag of the assignment that puts the current version into ``stage``."""
    art = registry.state(root).get(artifact)
    if art is None or stage not in art.stage_commits:
        return None
    commit = art.stage_commits[stage]
    found = [
        t.name
        for t in art.history
        if t.kind == "assign" and t.stage == stage and t.commit == commit
    ]
    return found[-1] if found else None


def required(project: Project, stage: str) -> bool:
    return stage in project.config.registry.require_signed


def check_stage(project: Project, artifact: str, stage: str) -> str | None:
    """Exit 5 unless ``stage`` is signed as required; the verified tag, or None when the
    stage needs no signature."""
    cfg = project.config.registry
    if stage not in cfg.require_signed:
        return None
    root = project.root
    tag = assignment_tag(root, artifact, stage)
    if tag is None:
        raise UsageError(f"'{artifact}' has no version in stage {stage!r}")
    verify_tag(project, tag, artifact, stage)
    return tag


def verify_tag(project: Project, tag: str, artifact: str, stage: str) -> None:
    """Exit 5 unless ``tag`` is signed by a key in the allowed-signers file."""
    cfg = project.config.registry
    root = project.root
    signers = root / cfg.allowed_signers
    if not signers.is_file():
        raise IntegrityError(
            f"registry.require_signed names {stage!r}, but {cfg.allowed_signers} is missing",
            "commit the allowed signers (one 'EMAIL ssh-ed25519 KEY' line each)",
        )
    res = scm.git(
        root,
        "-c",
        f"gpg.ssh.allowedSignersFile={signers}",
        "tag",
        "-v",
        "--",
        tag,
        check=False,
    )
    if res.returncode == 0:
        return
    text = res.err + res.out
    if (
        "no signature found" in text
        or "SSH SIGNATURE" not in scm.git(root, "cat-file", "tag", tag, check=False).out
    ):
        why = "is not signed"
    else:
        why = f"is not signed by a key in {cfg.allowed_signers}"
    raise IntegrityError(
        f"stage {stage!r} of '{artifact}' was assigned by tag '{tag}', which {why}; "
        "registry.require_signed refuses it",
        "promote it again with 'mlopskit model promote --sign' using an allowed key",
    )
