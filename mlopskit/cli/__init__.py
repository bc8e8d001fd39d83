"""The command line: parse arguments, call one library function, print the result.

The only package that imports click. Library modules are imported inside the commands
so that ``mlopskit --help`` does not pay for DVC, pandas or scikit-learn. Each module
here holds one family of commands; importing them registers the commands on ``cli``.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..errors import INTERNAL, INTERRUPTED, USAGE, MlopskitError
from ..project_lock import LockedError
from . import (  # noqa: F401
    ci,
    data,
    exp,
    gate,
    gc,
    metrics,
    model,
    monitor,
    params,
    pipeline,
    project,
    remote,
    report,
    serve,
    stage,
)
from ._base import cli
from .doctor import doctor as _doctor  # noqa: F401

__all__ = ["cli", "main"]


def _crash_log(exc: BaseException) -> Path | None:
    try:
        from platformdirs import user_log_dir

        path = Path(user_log_dir("mlopskit")) / "crash.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(exc)))
        return path
    except OSError:
        return None


def _quiet_shutdown() -> None:
    """After an interrupt, progress bars that DVC and fsspec left half-open may complain
    while the interpreter exits ('Exception ignored in ... __del__'): not ours to show."""
    sys.unraisablehook = lambda unraisable: None


def _on_sigterm(signum: int, frame: Any) -> None:
    # GitHub Actions cancels with SIGTERM: clean up exactly as for Ctrl-C.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (see README, "Exit codes")."""
    args = list(sys.argv[1:] if argv is None else argv)
    show_tb = "--traceback" in args or bool(os.environ.get("MLOPSKIT_TRACEBACK"))
    if threading_main():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cli.main(args=args, prog_name="mlopskit", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        # click turns Ctrl-C into Abort; the cleanup already ran on the way out.
        _quiet_shutdown()
        click.secho("Interrupted.", fg="red", err=True)
        return INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return USAGE if exc.exit_code == 2 else int(exc.exit_code)
    except MlopskitError as exc:
        if show_tb:
            traceback.print_exc()
        if isinstance(exc, LockedError) and "wait" in _params_of(args):
            exc = exc.with_wait_hint()
        click.secho(f"error: {exc}", fg="red", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        if show_tb:
            traceback.print_exc()
        _quiet_shutdown()
        click.secho("Interrupted.", fg="red", err=True)
        return INTERRUPTED
    except Exception as exc:
        # Not one of ours: a bug. Its own exit code (70, EX_SOFTWARE), never 3, so CI can
        # tell a crash from a refused precondition.
        if show_tb:
            traceback.print_exc()
        log = _crash_log(exc)
        detail = f": {exc}" if str(exc) else ""
        click.secho(
            f"error: unexpected {type(exc).__name__}{detail}. This is a bug in mlopskit; please "
            f"report it" + (f" with {log}" if log else "") + " (--traceback shows the stack)",
            fg="red",
            err=True,
        )
        return INTERNAL
    return 0


def _params_of(args: Sequence[str]) -> set[str]:
    """The parameter names of the command ``args`` invoke (groups take no valued options)."""
    cmd: click.Command = cli
    for arg in args:
        if not isinstance(cmd, click.Group):
            break
        if arg.startswith("-"):
            continue
        sub = cmd.commands.get(arg)
        if sub is None:
            return set()
        cmd = sub
    return {p.name for p in cmd.params if p.name}


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
