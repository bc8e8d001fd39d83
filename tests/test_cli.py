"""The CLI contract: exit codes, one-line errors, --traceback, a light `--help`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mlopskit import __version__, errors

from .conftest import Repo, run_cli, run_subprocess


def test_help_and_version() -> None:
    code, out, _ = run_cli("--help")
    assert code == 0 and "quickstart" in out
    code, out, _ = run_cli("--version")
    assert code == 0 and __version__ in out


def test_help_does_not_import_heavy_modules() -> None:
    """`mlopskit --help` stays fast: no DVC, pandas, sklearn or GitPython at import."""
    code = (
        "import sys\n"
        "from mlopskit import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('dvc', 'pandas', 'sklearn', 'git', 'ruamel.yaml', 'rich') "
        "if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_usage_errors_are_exit_2() -> None:
    assert run_cli("no-such-command")[0] == errors.USAGE
    assert run_cli("data", "add")[0] == errors.USAGE
    assert run_cli("stage", "add", "x")[0] == errors.USAGE


def test_error_is_one_line_and_traceback_on_demand(repo: Repo) -> None:
    code, _, err = run_cli("params", "set", "nope=1", cwd=repo.root)
    assert code == errors.USAGE
    assert err.startswith("error: ") and err.count("\n") == 1
    code, _, err = run_cli("--traceback", "params", "set", "nope=1", cwd=repo.root)
    assert code == errors.USAGE and "Traceback" in err


def test_unexpected_exception_is_exit_3_with_report_hint(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlopskit import params

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("kaput")

    monkeypatch.setattr(params, "show", boom)
    code, _, err = run_cli("params", "show", cwd=repo.root)
    assert code == errors.PRECONDITION
    assert "please report" in err and "kaput" in err and "Traceback" not in err
    from platformdirs import user_log_dir

    log = Path(user_log_dir("mlopskit")) / "crash.log"
    assert str(log) in err
    assert "RuntimeError: kaput" in log.read_text()


def test_python_dash_m_and_interrupt_code(repo: Repo) -> None:
    res = run_subprocess("params", "show", "--json", cwd=repo.root)
    assert res.returncode == 0 and '"train.lr": 0.1' in res.stdout
