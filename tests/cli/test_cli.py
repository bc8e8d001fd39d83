"""The CLI contract: exit codes, one-line errors, --traceback, a light `--help`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlopskit import __version__, errors

from ..conftest import Repo, run_cli, run_subprocess


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


def test_unexpected_exception_is_exit_70_with_report_hint(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlopskit import params

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("kaput")

    monkeypatch.setattr(params, "show", boom)
    code, _, err = run_cli("params", "show", cwd=repo.root)
    assert code == errors.INTERNAL
    assert "please report" in err and "kaput" in err and "Traceback" not in err
    from platformdirs import user_log_dir

    log = Path(user_log_dir("mlopskit")) / "crash.log"
    assert str(log) in err
    assert "RuntimeError: kaput" in log.read_text()


def test_python_dash_m_and_interrupt_code(repo: Repo) -> None:
    res = run_subprocess("params", "show", "--json", cwd=repo.root)
    assert res.returncode == 0 and '"train.lr": 0.1' in res.stdout


def test_data_help_lists_every_data_subcommand_untruncated() -> None:
    """Each `data` subcommand is listed with a whole sentence: click cuts a long first
    sentence to '...' (the old listing read 'Track PATHS with DVC and commit their...')."""
    from mlopskit.cli import cli

    group = cli.commands["data"]
    names = sorted(group.commands)  # type: ignore[attr-defined]
    assert {"add", "push", "pull", "status", "schema", "validate", "update"} <= set(names)
    res = run_subprocess("data", "--help", cwd=Path.cwd(), env={**os.environ, "COLUMNS": "80"})
    assert res.returncode == 0, res.stderr
    listing = res.stdout.split("Commands:\n", 1)[1].splitlines()
    listed = {line.split()[0]: line for line in listing if line.startswith("  ") and line.strip()}
    assert sorted(listed) == names
    for name, line in listed.items():
        assert not line.rstrip().endswith("..."), line
        assert not group.commands[name].hidden, name  # type: ignore[attr-defined]


def test_validate_counts_dvc_yaml_stages(trained: Repo) -> None:
    """The quickstart has 4 stages; DVC's index also holds data/raw/data.csv.dvc as a
    stage, which made `validate` say 5."""
    from ..conftest import dvc

    stages = dvc(trained.root, "stage", "list", "--name-only").stdout.split()
    assert stages == ["validate", "prepare", "train", "evaluate"]
    code, out, err = run_cli("validate", cwd=trained.root)
    assert code == 0, err
    assert "Valid: 4 stage(s) in dvc.yaml and 1 .dvc file(s); every param they name exists." in out


@pytest.mark.slow
def test_quickstart_output_has_no_dvc_noise(tmp_path: Path) -> None:
    """On a terminal (a pty: DVC shows spinners and bars only there), quickstart prints
    the stages' own lines and its summary, not DVC's logging."""
    import pty
    import select

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlopskit", "quickstart", "demo"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        if not select.select([leader], [], [], 300)[0]:
            proc.kill()
            pytest.fail("quickstart printed nothing for 300 s")
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=300) == 0
    text = b"".join(chunks).decode("utf-8", "replace")
    assert "Trained a model on the breast_cancer data set" in text
    assert "prepare: 426 train rows" in text  # the stages' own output stays
    for noise in (
        "didn't change, skipping",
        "Running stage",
        "lock file 'dvc.lock'",
        "Checking graph",
        "\x1b[?25l",  # a spinner hiding the cursor
    ):
        assert noise not in text, noise
