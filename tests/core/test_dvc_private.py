"""DVC's private names that mlopskit's gateway (mlopskit/_dvc.py) relies on.

Each check fails loudly, naming the name, when a DVC release moves or changes it; the
gateway's comments say which versions were checked. Only this test and the gateway
import them.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest


def test_reproduce_takes_a_per_stage_step() -> None:
    """pipeline.repro hands DVC its own step (_dvc.plain_step / pulling_step)."""
    from dvc.repo import reproduce

    step = inspect.signature(reproduce._reproduce_stage)
    assert list(step.parameters)[0] == "stage", step
    assert any(p.kind is p.VAR_KEYWORD for p in step.parameters.values()), step
    inner = inspect.signature(reproduce._reproduce)
    assert "repro_fn" in inner.parameters, "dvc.repo.reproduce._reproduce lost repro_fn"
    source = inspect.getsource(reproduce._reproduce)
    assert "repro_fn(stage, upstream=upstream, force=force_stage" in source


def test_stage_commands_run_through_run() -> None:
    """_dvc._install_stage_runner replaces dvc.stage.run._run(executable, cmd, **kwargs)
    and calls dvc.stage.run._make_cmd(executable, cmd)."""
    import dvc.stage.run as dvc_run

    assert list(inspect.signature(dvc_run._make_cmd).parameters) == ["executable", "cmd"]
    params = inspect.signature(dvc_run._run).parameters
    assert list(params)[:2] == ["executable", "cmd"], params
    assert "_run(" in inspect.getsource(dvc_run.cmd_run), "cmd_run no longer calls _run"


def test_the_stage_runner_is_installed_and_runs_stages(tmp_path: Path) -> None:
    """After open_repo, DVC's _run is mlopskit's (stages in their own process group)."""
    import dvc.stage.run as dvc_run

    from mlopskit import _dvc

    from ..conftest import dvc, git

    git(tmp_path, "init", "-q")
    dvc(tmp_path, "init", "-q")
    with _dvc.open_repo(tmp_path):
        assert getattr(dvc_run._run, "_mlopskit", False)


def test_temporary_names_are_what_drop_interrupted_tmp_looks_for() -> None:
    """dvc-objects copies to ``.<token>.tmp`` and removes nothing when interrupted; the
    gateway recognises exactly those names."""
    from dvc_objects.fs import local, utils

    from mlopskit import _dvc

    for _ in range(50):
        assert _dvc.TMP_NAME.fullmatch(utils.tmp_fname()), utils.tmp_fname()
    assert not _dvc.TMP_NAME.fullmatch("data.csv.tmp")
    source = inspect.getsource(local)
    assert "tmp_fname()" in source or 'tmp_fname("")' in source


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("dvc.utils.cli_parse", "parse_params"),
        ("dvc.utils.collections", "apply_diff"),
        ("dvc.stage.serialize", "to_pipeline_file"),
        ("dvc.stage.cache", "RunCacheNotSupported"),
        ("dvc.repo", "lock_repo"),
    ],
)
def test_other_internal_names_the_gateway_uses(module: str, name: str) -> None:
    import importlib

    assert hasattr(importlib.import_module(module), name), f"{module}.{name} is gone"


@pytest.mark.parametrize(
    ("module", "owner", "name"),
    [
        # _dvc._sweep calls it on every object store, as DVC's gc does
        ("dvc_data.hashfile.db", "HashFileDB", "_remove_unpacked_dir"),
        ("dvc_data.hashfile.db.local", "LocalHashFileDB", "_remove_unpacked_dir"),
        # _dvc._install_stage_runner
        ("dvc.stage.run", None, "_run"),
        ("dvc.stage.run", None, "_make_cmd"),
        # _dvc.read_not_pulled switches revisions as `dvc metrics diff` does
        ("dvc.repo", "Repo", "brancher"),
    ],
)
def test_private_names_the_gateway_calls(module: str, owner: str | None, name: str) -> None:
    import importlib

    where = importlib.import_module(module)
    if owner is not None:
        where = getattr(where, owner)
    assert callable(getattr(where, name, None)), f"{module}.{owner or ''}.{name} is gone"


def test_ui_enabled_is_the_switch_quiet_turns_off(capsys: pytest.CaptureFixture[str]) -> None:
    """_dvc.quiet sets ``ui._enabled = False``: ui.write prints nothing then."""
    from dvc.ui import ui

    from mlopskit import _dvc

    assert isinstance(ui._enabled, bool), "dvc.ui.ui._enabled is gone"
    was = ui._enabled
    try:
        ui._enabled = True
        ui.write("printed-while-enabled")
        with _dvc.quiet():
            assert ui._enabled is False
            ui.write("printed-while-quiet")
    finally:
        ui._enabled = was
    out = capsys.readouterr().out
    assert "printed-while-enabled" in out and "printed-while-quiet" not in out


def test_gc_removes_unpacked_dirs_as_dvc_does() -> None:
    """DVC's gc calls ``odb._remove_unpacked_dir(hash_)`` for each .dir it removes; so
    does _dvc._sweep, unguarded (a rename fails, never skips silently)."""
    from dvc_data.hashfile import gc

    from mlopskit import _dvc

    assert "odb._remove_unpacked_dir(hash_)" in inspect.getsource(gc)
    ours = inspect.getsource(_dvc._sweep)
    assert "odb._remove_unpacked_dir(o.oid)" in ours and "hasattr" not in ours


def test_brancher_takes_revs_without_the_workspace() -> None:
    """_dvc.read_not_pulled: ``repo.brancher(revs=[rev], workspace=False)``."""
    from dvc.repo import brancher

    params = inspect.signature(brancher.brancher).parameters
    assert "revs" in params and "workspace" in params, params
