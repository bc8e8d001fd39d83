"""The one table of GitHub Actions our generated workflows use, pinned by commit SHA.

SHAs were read from each action's repository (tag -> commit); a bump is one edit here,
and the generated `.github/dependabot.yml` lets users' repositories keep them current.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pin:
    action: str
    version: str
    sha: str

    @property
    def uses(self) -> str:
        """The ``uses:`` value with its version comment, for a workflow template."""
        return f"{self.action}@{self.sha}  # {self.version}"


PINS: dict[str, Pin] = {
    p.action: p
    for p in (
        Pin("actions/checkout", "v7.0.1", "3d3c42e5aac5ba805825da76410c181273ba90b1"),
        Pin("actions/setup-python", "v7.0.0", "5fda3b95a4ea91299a34e894583c3862153e4b97"),
        Pin("actions/cache", "v5.0.5", "27d5ce7f107fe9357f9df03efb73ab90386fccae"),
        Pin("actions/upload-artifact", "v7.0.0", "bbbca2ddaa5d8feaa63e36b76fdaad77386f024f"),
        Pin("actions/download-artifact", "v8.0.1", "3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c"),
        Pin(
            "aws-actions/configure-aws-credentials",
            "v6.2.3",
            "e6de054238d6b7531b4efff3b6587d9aade6a06c",
        ),
        Pin("google-github-actions/auth", "v3.0.0", "7c6bc770dae815cd3e89ee6cdf493a5fab2cc093"),
        Pin("azure/login", "v3.0.1", "f5d393ae46f8fde4be8b75f32e3fc50e654ad0ca"),
    )
}


# What ci.yml installs to run a project's tests/ when neither requirements-dev.txt nor
# tests/requirements.txt names its test requirements.
PYTEST = "pytest==9.2.0"


def uses(action: str) -> str:
    return PINS[action].uses
