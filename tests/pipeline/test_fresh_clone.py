"""A fresh clone tells the truth (issue 10, item 6).

The quickstart keeps its default DVC remote in ``.dvc/config.local``, which git never
carries: a clone has no remote. Every command that needs one says so in the same line,
with the fix, and exits 2; none pretends the data is there or up to date.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mlopskit import errors, remote

from ..conftest import Repo, dvc, git, run_cli, run_subprocess

NO_REMOTE = f"error: {remote.NO_REMOTE} ({remote.NO_REMOTE_HINT})"
DATA = ["data/processed/test.csv", "data/processed/train.csv", "data/raw/data.csv"]


def _publish(trained: Repo, origin: Path, tmp_path: Path, name: str = "clone") -> Path:
    trained.git("remote", "add", "origin", str(origin))
    trained.git("push", "-q", "origin", "main")
    git(tmp_path, "clone", "-q", str(origin), name)
    clone = tmp_path / name
    assert not (clone / ".dvc" / "config.local").exists()
    assert "remote" not in (clone / ".dvc" / "config").read_text()
    return clone


def _cache_metrics(trained: Repo) -> None:
    """Make reports/metrics.json a DVC-cached output (cache: true), pushed to the remote."""
    yaml = trained.root / "dvc.yaml"
    text = yaml.read_text()
    cached = text.replace(
        "- reports/metrics.json:\n          cache: false", "- reports/metrics.json"
    )
    assert cached != text
    yaml.write_text(cached)
    trained.git("rm", "-q", "--cached", "reports/metrics.json")
    dvc(trained.root, "commit", "-f", "-q")
    dvc(trained.root, "push", "-q")
    trained.git("add", "-A")
    trained.git("commit", "-qm", "cache the metrics")
    assert "/metrics.json" in (trained.root / "reports" / ".gitignore").read_text()


def _metrics_show_with_an_empty_remote(clone: Path, tmp_path: Path) -> tuple[str, str]:
    """`metrics show` once the default remote is an empty one: exit 0, as DVC's (whose
    exit code is checked first); its stdout and stderr."""
    empty = tmp_path / "empty-store"
    empty.mkdir()
    code, _, err = run_cli("remote", "add", "empty", str(empty), "--default", "--force", cwd=clone)
    assert code == 0, err
    assert dvc(clone, "metrics", "show", check=False).returncode == 0
    code, out, err = run_cli("metrics", "show", cwd=clone)
    assert code == 0, err
    return out, err


@pytest.mark.slow
def test_commands_needing_the_remote_say_there_is_none(
    trained: Repo, origin: Path, tmp_path: Path
) -> None:
    clone = _publish(trained, origin, tmp_path)
    # The contrast: what DVC itself says in the same clone.
    pulled = dvc(clone, "pull", check=False)
    assert pulled.returncode == 1
    assert "Is your cache up to date?" in pulled.stderr
    assert "No remote provided and no default remote set" in pulled.stderr
    st = dvc(clone, "data", "status", check=False)
    assert st.returncode == 0 and "deleted: data/raw/data.csv" in st.stdout
    for args in (["data", "pull"], ["data", "status"], ["repro", "--pull"]):
        res = run_subprocess(*args, cwd=clone)
        assert res.returncode == errors.USAGE, (args, res.stdout, res.stderr)
        assert res.stderr.splitlines() == [NO_REMOTE], args
        assert "up to date" not in res.stdout, args
        assert "Checkout failed" not in res.stderr + res.stdout
        assert "needs dvc commit" not in res.stdout
    # One target, too; nothing was changed by any of it.
    code, _, err = run_cli("data", "pull", "data/raw/data.csv", cwd=clone)
    assert code == errors.USAGE and NO_REMOTE in err
    assert git(clone, "status", "--porcelain") == ""
    # metrics.json is in git (cache: false): shown as in any checkout, as DVC does.
    code, out, err = run_cli("metrics", "show", cwd=clone)
    assert code == 0 and "accuracy" in out, err

    # With the remote added as the hint says, the same commands work.
    code, out, err = run_cli("remote", "add", "store", str(trained.remote), "--default", cwd=clone)
    assert code == 0, err
    code, out, err = run_cli("data", "status", cwd=clone)
    assert code == 0, err
    for path in DATA:
        assert f"not in the workspace (pull it: mlopskit data pull {path})" in out
    assert "deleted" not in out
    code, out, err = run_cli("data", "pull", cwd=clone)
    assert code == 0, err
    assert all((clone / p).is_file() for p in [*DATA, "models/model.skops"])
    assert (clone / "data/raw/data.csv").read_bytes() == (
        trained.root / "data/raw/data.csv"
    ).read_bytes()
    code, out, err = run_cli("repro", "--pull", cwd=clone)
    assert code == 0 and "Pipeline is up to date." in out, err


@pytest.mark.slow
def test_cached_metrics_in_a_fresh_clone(trained: Repo, origin: Path, tmp_path: Path) -> None:
    _cache_metrics(trained)
    clone = _publish(trained, origin, tmp_path)
    assert not (clone / "reports" / "metrics.json").exists()
    # DVC: exit 0, no values, "failed to load".
    shown = dvc(clone, "metrics", "show", check=False)
    assert shown.returncode == 0 and "failed to load some metrics" in shown.stderr
    res = run_subprocess("metrics", "show", cwd=clone)
    assert res.returncode == errors.USAGE
    assert res.stderr.splitlines() == [NO_REMOTE]
    assert "not found" not in res.stderr and "repro" not in res.stderr
    code, _, err = run_cli("metrics", "diff", cwd=clone)
    assert code == errors.USAGE and err.splitlines() == [NO_REMOTE], err

    # With a remote, DVC streams the file from it; so do we (and say it was not pulled).
    code, _, err = run_cli("remote", "add", "store", str(trained.remote), "--default", cwd=clone)
    assert code == 0, err
    shown = dvc(clone, "metrics", "show", "--json")
    code, out, err = run_cli("metrics", "show", "--json", cwd=clone)
    assert code == 0, err
    ours = json.loads(out)["reports/metrics.json"]
    theirs = json.loads(shown.stdout)[""]["data"]["reports/metrics.json"]["data"]
    assert ours == theirs and "accuracy" in ours
    assert "not in the workspace, read from remote 'store'" in err
    assert "mlopskit data pull reports/metrics.json" in err
    assert not (clone / "reports" / "metrics.json").exists()  # shown, not pulled
    # gate add knows those metric names too (it accepted any name before: none were read).
    code, _, err = run_cli("gate", "add", "acuracy >= 0.5", cwd=clone)
    assert code == errors.USAGE and "did you mean 'accuracy'?" in err, err

    # metrics diff and the gate read it the same way: `repro --pull` then `check` is
    # what a pull request's workflow runs in a fresh clone. The base revision reads
    # through the remote its own .dvc/config names (as DVC reads it): committed here.
    git(clone, "commit", "-qam", "the remote")
    theirs_diff = json.loads(dvc(clone, "metrics", "diff", "--all", "--json").stdout)
    assert theirs_diff["reports/metrics.json"]["accuracy"]["old"] == ours["accuracy"]
    code, out, err = run_cli("metrics", "diff", "--json", cwd=clone)
    assert code == 0, err
    assert {(c["path"], c["key"]): (c["old"], c["new"]) for c in json.loads(out)} == {
        (path, key): (v["old"], v["new"])
        for path, values in theirs_diff.items()
        for key, v in values.items()
    }
    acc = ours["accuracy"]
    rules = [
        f"reports/metrics.json:accuracy >= {acc - 0.01}",
        f"accuracy <= {acc + 0.01}",
        "accuracy: max_drop 0",  # the base (HEAD) read from the remote too
    ]
    code, out, err = run_cli(
        "check", "--no-config", "--base", "HEAD", *(f"--rule={r}" for r in rules), cwd=clone
    )
    assert code == 0 and "Quality gate passed (3 rule(s))." in out, out + err
    code, out, err = run_cli(
        "check", "--no-config", "--rule", f"accuracy >= {acc + 0.01}", "--json", cwd=clone
    )
    assert code == errors.FAILED, out + err
    (outcome,) = json.loads(out)["rules"]
    assert outcome["value"] == acc and f"{acc:g} is not >= {acc + 0.01:g}" == outcome["reason"]
    assert not (clone / "reports" / "metrics.json").exists()

    # A remote that lacks it: declared, not there, exit 0 (as `dvc metrics show`).
    out, err = _metrics_show_with_an_empty_remote(clone, tmp_path)
    assert (
        "reports/metrics.json: declared but not in the workspace/cache "
        "(pull it: mlopskit data pull reports/metrics.json)" in err
    )
    assert "accuracy" not in out
    assert out == "No metrics to show: the declared metrics files are not pulled (see above).\n"
    # diff cannot diff it, and the gate fails naming it and the pull command.
    not_pulled = (
        "reports/metrics.json: declared but not pulled "
        "(pull it: mlopskit data pull reports/metrics.json)"
    )
    code, out, err = run_cli("metrics", "diff", cwd=clone)
    assert code == errors.FAILED and err == f"error: metrics file {not_pulled}\n", err
    code, out, err = run_cli(
        "check", "--no-config", "--rule", "accuracy >= 0.1", "--json", cwd=clone
    )
    assert code == errors.FAILED, out + err
    (outcome,) = json.loads(out)["rules"]
    assert outcome["reason"] == (
        "metric is missing: reports/metrics.json is declared but not pulled "
        "(pull it: mlopskit data pull reports/metrics.json)"
    )


@pytest.mark.slow
def test_a_remote_folder_that_is_not_on_this_machine(
    trained: Repo, origin: Path, tmp_path: Path
) -> None:
    """A committed local remote (a path of another machine): exit 4 naming it, where DVC
    says 'Everything is up to date.' / 'Checkout failed' and repro 'up to date'."""
    clone = _publish(trained, origin, tmp_path)
    gone = tmp_path / "elsewhere" / "store"
    code, _, err = run_cli("remote", "add", "shared", str(gone), "--default", cwd=clone)
    assert code == 0, err
    git(clone, "commit", "-qam", "shared remote")  # a clean tree: repro's fast path applies
    assert dvc(clone, "pull", check=False).returncode == 1
    expected = f"error: DVC remote 'shared' is a folder that does not exist here ({gone}): "
    for args in (["repro", "--pull"], ["data", "pull"], ["data", "status"]):
        code, out, err = run_cli(*args, cwd=clone)
        assert code == errors.REMOTE, (args, out, err)
        assert err.startswith(expected) and "cannot be pulled" in err, err
        assert "up to date" not in out
    assert not gone.exists()
    # A remote that exists but lacks the data: "pull it" would be false.
    gone.mkdir(parents=True)
    code, out, err = run_cli("data", "status", cwd=clone)
    assert code == 0, err
    states = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.splitlines()[2:])
    assert states["data/raw/data.csv"] == (
        "not in the workspace nor in remote 'shared' (push it from where it was made), not in cache"
    )
    assert "pull it" not in out
    code, out, err = run_cli("data", "pull", cwd=clone)
    assert code == errors.FAILED
    assert "4 path(s) are in neither the cache nor remote 'shared': data/processed/test.csv" in err
    assert "Checkout failed" not in err and "Is your cache up to date?" not in err


def test_no_remote_but_the_cache_has_it(trained: Repo) -> None:
    """Without a remote, data deleted by hand is still in the cache: pull restores it;
    only data in neither place gets the no-remote error."""
    (trained.root / ".dvc" / "config.local").unlink()
    raw = trained.root / "data" / "raw" / "data.csv"
    before = raw.read_bytes()
    raw.unlink()
    code, out, err = run_cli("data", "status", cwd=trained.root)
    assert code == 0, err
    assert "not in the workspace (pull it: mlopskit data pull data/raw/data.csv)" in out
    code, out, err = run_cli("data", "pull", "data/raw/data.csv", cwd=trained.root)
    assert code == 0, err
    assert raw.read_bytes() == before
    # The model: out of the workspace and out of the cache. Only a remote has it now.
    import yaml

    lock = yaml.safe_load((trained.root / "dvc.lock").read_text())
    (md5,) = [
        o["md5"] for o in lock["stages"]["train"]["outs"] if o["path"] == "models/model.skops"
    ]
    (trained.root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).unlink()
    (trained.root / "models" / "model.skops").unlink()
    code, _, err = run_cli("data", "pull", cwd=trained.root)
    assert code == errors.USAGE and NO_REMOTE in err
    code, _, err = run_cli("data", "status", cwd=trained.root)
    assert code == errors.USAGE and NO_REMOTE in err


def test_a_metrics_file_inside_an_unpulled_directory_output(
    repo: Repo, origin: Path, tmp_path: Path
) -> None:
    """DVCLive's layout (a stage's whole folder is one output; `metrics:` names a file in
    it), in a clone that pulled nothing: read from the remote as DVC reads it; with a remote
    that lacks it, exit 0 naming the file and the pull command, never "no stage declares"
    nor "run repro" (the lock records it)."""
    repo.write(
        "train.py",
        "import json, os\nos.makedirs('results/train', exist_ok=True)\n"
        "json.dump({'acc': 0.75, 'loss': 0.5}, open('results/train/metrics.json', 'w'))\n"
        "open('results/train/log.txt', 'w').write('done')\n",
    )
    repo.write(
        "dvc.yaml",
        "metrics:\n- results/train/metrics.json\nstages:\n  train:\n"
        "    cmd: python train.py\n    deps: [train.py]\n    outs: [results/train]\n",
    )
    dvc(repo.root, "repro", "-q")
    dvc(repo.root, "push", "-q")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "train")
    repo.git("remote", "add", "origin", str(origin))
    repo.git("push", "-q", "origin", "main")
    git(tmp_path, "clone", "-q", str(origin), "clone")
    clone = tmp_path / "clone"
    code, _, err = run_cli("remote", "add", "store", str(repo.remote), "--default", cwd=clone)
    assert code == 0, err
    theirs = json.loads(dvc(clone, "metrics", "show", "--json").stdout)
    code, out, err = run_cli("metrics", "show", "--json", cwd=clone)
    assert code == 0, err
    assert json.loads(out) == {
        "results/train/metrics.json": theirs[""]["data"]["results/train/metrics.json"]["data"]
    }
    assert json.loads(out)["results/train/metrics.json"] == {"acc": 0.75, "loss": 0.5}
    assert not (clone / "results" / "train").exists()  # shown, not pulled

    out, err = _metrics_show_with_an_empty_remote(clone, tmp_path)
    assert "results/train/metrics.json: declared but not" in err and "data pull" in err
    assert "repro" not in err
    assert out == "No metrics to show: the declared metrics files are not pulled (see above).\n"
