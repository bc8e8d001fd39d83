"""The one reader of DVC project state (mlopskit/dvcfiles.py), with DVC as the oracle.

A corpus history (tests/dvccorpus.py: vars, foreach, matrix, ${...}, nested dvc.yaml,
top-level metrics/params/plots, YAML/JSON/TOML/Python params, cached metrics, a
directory of plots, a .dvc file; a param change, a data change, a stage added and
renamed, a foreach list grown, a dvc.yaml added in a subfolder) is read commit by
commit by every read command and by ``dvc`` itself; the answers must be equal.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlopskit import at_revision, dotted, metrics, params
from mlopskit.pipeline import run as pipeline
from mlopskit.pipeline import stages
from mlopskit.project import Project
from mlopskit.report import build as report
from mlopskit.report import history

from .. import dvccorpus
from ..conftest import dvc, git, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def _corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, str]]]:
    root = tmp_path_factory.mktemp("corpus") / "project"
    return root, dvccorpus.build(root)


@pytest.fixture
def corpus(_corpus: tuple[Path, list[tuple[str, str]]], tmp_path: Path) -> tuple[Path, list[str]]:
    src, shas = _corpus
    dst = tmp_path / "project"
    shutil.copytree(src, dst, symlinks=True)
    return dst, [s for s, _ in shas]


def _dvc_json(root: Path, *args: str) -> Any:
    return json.loads(dvc(root, *args, "--json").stdout or "{}")


def _label(file: str, key: str) -> str:
    return key if file == "params.yaml" else f"{file}:{key}"


def test_metrics_show_equals_dvc_at_every_commit(corpus: tuple[Path, list[str]]) -> None:
    root, shas = corpus
    theirs = _dvc_json(root, "metrics", "show", "--all-commits")
    for sha in [*shas, None]:
        expected = {
            f: dotted.flatten(v["data"])
            for f, v in theirs[sha or "workspace"]["data"].items()
            if "data" in v
        }
        assert metrics.read(root, sha) == expected, sha
    # foreach/matrix metrics are there (7 files at the head), nested ones too
    head = metrics.show(Project(root=root))
    assert {"results/train-cc.json", "results/eval-2-4.yaml", "sub/out/fit.json"} <= set(head)
    assert "ignored/m.json" not in head  # behind .dvcignore, as DVC has it


def test_metrics_diff_equals_dvc_commit_by_commit(corpus: tuple[Path, list[str]]) -> None:
    root, shas = corpus
    project = Project(root=root)
    for a, b in zip(shas, shas[1:], strict=False):
        theirs = _dvc_json(root, "metrics", "diff", a, b, "--all")
        expected = {}
        for f, d in theirs.items():
            for k, v in d.items():
                expected[(f, k)] = (v.get("old"), v.get("new"))
        ours = {(c.path, c.key): (c.old, c.new) for c in metrics.diff(project, base=a, head=b)}
        assert ours == expected, (a, b)


def test_params_show_and_diff_equal_dvc_commit_by_commit(corpus: tuple[Path, list[str]]) -> None:
    root, shas = corpus
    project = Project(root=root)
    for sha in shas:
        theirs = _dvc_json(root, "params", "diff", sha, sha, "--all")
        expected = {_label(f, k): v["new"] for f, d in theirs.items() for k, v in d.items()}
        assert params.read(root, sha) == expected, sha
    for a, b in zip(shas, shas[1:], strict=False):
        theirs = _dvc_json(root, "params", "diff", a, b)
        expected = {
            _label(f, k): (v.get("old"), v.get("new"))
            for f, d in theirs.items()
            for k, v in d.items()
        }
        ours = {c.key: (c.old, c.new) for c in params.diff(project, base=a, head=b)}
        assert ours == expected, (a, b)
    # a vars file that is no params file shows the values stages interpolate
    assert params.read(root, shas[-1])["names.yaml:names.tag"] == "v1"
    # the nested param change is seen (it was "no changes" before)
    last = {c.key: c for c in params.diff(project, base=shas[-2], head=shas[-1])}
    assert last["sub/params.yaml:seed"].old == 7 and last["sub/params.yaml:seed"].new == 8


def test_history_equals_dvc_metrics_show(corpus: tuple[Path, list[str]]) -> None:
    root, shas = corpus
    theirs = _dvc_json(root, "metrics", "show", "--all-commits")
    rows = {r.commit: r for r in history.history(Project(root=root), limit=None)}
    for sha in shas:
        files = {f: v["data"] for f, v in theirs[sha]["data"].items() if "data" in v}
        expected = {
            (f"{f}:{k}" if len(files) > 1 else k): v
            for f, d in files.items()
            for k, v in dotted.flatten(d).items()
        }
        assert rows[sha].metrics == expected, sha
        expected_params = {
            _label(f, k): v["new"]
            for f, d in _dvc_json(root, "params", "diff", sha, sha, "--all").items()
            for k, v in d.items()
        }
        assert rows[sha].params == expected_params, sha


def test_stage_list_and_plots_equal_dvc_at_every_commit(corpus: tuple[Path, list[str]]) -> None:
    root, shas = corpus
    for sha in shas:
        git(root, "checkout", "-q", sha)
        dvc(root, "checkout", "-q")
        listed = dvc(root, "stage", "list", "--all", "--name-only").stdout.split()
        expected = sorted(n for n in listed if not n.endswith(".dvc"))
        ours = sorted(s.name for s in stages.stage_list(Project(root=root)))
        assert ours == expected, sha
        plot_ids = sorted(_dvc_json(root, "plots", "show")["data"])
        assert sorted(d["name"] for d in report._plot_defs(root, None)) == plot_ids, sha
        assert sorted(d["name"] for d in report._plot_defs(root, sha)) == plot_ids, sha
    git(root, "checkout", "-q", "main")
    code, out, _ = run_cli("stage", "list", cwd=root)
    assert code == 0 and "sub/dvc.yaml:fit" in out


def test_directory_plots_render_from_a_revision(corpus: tuple[Path, list[str]]) -> None:
    """DVCLive's plots/metrics folder: rendered at the base and head, not "(no data)"."""
    root, shas = corpus
    images = report.plots(root, shas[0], "first")
    by_name = {p.name: p for p in images}
    acc = by_name["dvclive/plots/metrics/acc.tsv"]
    assert acc.base_png and acc.head_png and acc.note == ""


def test_cache_dir_from_dvc_config(corpus: tuple[Path, list[str]], tmp_path: Path) -> None:
    """`dvc cache dir --local`: base values come from that cache (not "added")."""
    root, shas = corpus
    moved = tmp_path / "elsewhere-cache"
    shutil.move(str(root / ".dvc" / "cache"), moved)
    dvc(root, "cache", "dir", "--local", str(moved))
    assert at_revision.cache_path(root, "ab" * 16).is_relative_to(moved)
    project = Project(root=root)
    changes = metrics.diff(project, base=shas[-2], head=shas[-1])
    assert changes and not [c for c in changes if c.status == "added"]
    eval_old = {c.key: c.old for c in changes if c.path == "results/eval-1-3.yaml"}
    assert eval_old["value"] is not None
    theirs = _dvc_json(root, "metrics", "diff", shas[-2], shas[-1], "--all")
    assert eval_old["value"] == theirs["results/eval-1-3.yaml"]["value"]["old"]


def test_sweep_with_a_configured_cache_dir(corpus: tuple[Path, list[str]], tmp_path: Path) -> None:
    """`dvc cache dir --local`: every point failed (a second [cache] section in the
    clone's config.local, which DVC refuses); now the point runs, on the shared cache."""
    from mlopskit.experiments import sweep

    root, _ = corpus
    moved = tmp_path / "shared-cache"
    shutil.move(str(root / ".dvc" / "cache"), moved)
    dvc(root, "cache", "dir", "--local", str(moved))
    clone = tmp_path / "clone"
    sweep._prepare_clone(root, "HEAD", clone, b"")
    text = (clone / ".dvc" / "config.local").read_text()
    assert text.count("[cache]") == 1, text
    assert Path(dvc(clone, "cache", "dir").stdout.strip()) == moved
    code, out, err = run_cli("exp", "sweep", "-S", "seed=3", "-j", "1", cwd=root)
    assert code == 0, out + err
    assert " done " in out and "failed" not in out
    listed = dvc(root, "exp", "list", "--name-only").stdout.split()
    assert len(listed) == 1 and listed[0].startswith("sweep-")


def test_report_names_unreachable_metrics_and_no_plots(corpus: tuple[Path, list[str]]) -> None:
    root, shas = corpus
    (root / "results" / "eval-1-3.yaml").unlink()
    # not in the workspace but in the cache: read from it, as `dvc metrics show` does
    theirs = _dvc_json(root, "metrics", "show")[""]["data"]["results/eval-1-3.yaml"]["data"]
    assert metrics.read(root)["results/eval-1-3.yaml"] == dotted.flatten(theirs)
    shutil.rmtree(root / ".dvc" / "cache")
    r = report.build(Project(root=root), base=shas[-1], with_plots=False)
    from mlopskit.report import render as report_render

    text = report_render.markdown(r)
    assert r.unreachable == ["results/eval-1-3.yaml"] and r.plots_skipped
    assert "Plots not rendered (--no-plots)" in text and "No plots declared" not in text
    assert "Declared but not in the workspace or the DVC cache: `results/eval-1-3.yaml`" in text
    # the other outputs are only not pulled: dvc.lock is not "out of date"
    assert "**out of date**" not in text
    code, _, err = run_cli("metrics", "show", cwd=root)
    # The corpus has no DVC remote: the file could only come from one (issue 10, item 6).
    assert code == 2 and "no DVC remote is configured" in err, err
    assert "mlopskit remote add" in err


def test_report_names_an_unpulled_plots_directory(corpus: tuple[Path, list[str]]) -> None:
    """A directory output of plots (DVCLive's dvclive/plots/metrics) in neither the
    workspace nor the cache: declared, named with its pull command (not dropped, which
    leaves "No plots declared" when it is the only plot)."""
    root, shas = corpus
    shutil.rmtree(root / "dvclive" / "plots" / "metrics")
    shutil.rmtree(root / ".dvc" / "cache")
    notes = {p.name: p.note for p in report.plots(root, shas[-1], "base")}
    assert notes["dvclive/plots/metrics"] == (
        "declared but not in the workspace or the DVC cache "
        "(pull it: mlopskit data pull dvclive/plots/metrics)"
    )


def test_lock_outs_are_not_overwritten_by_later_deps(corpus: tuple[Path, list[str]]) -> None:
    """A stale downstream dvc.lock entry (its deps record an older md5 of prep.txt)
    does not hide what the producing stage recorded."""
    root, _ = corpus
    lock = (root / "dvc.lock").read_text()
    data = json.loads(json.dumps(__import__("yaml").safe_load(lock)))
    produced = next(o["md5"] for o in data["stages"]["prep"]["outs"])
    for name, entry in data["stages"].items():
        if name != "prep":
            for dep in entry.get("deps", []):
                if dep["path"] == "results/prep.txt":
                    dep["md5"] = "0" * 32
    (root / "dvc.lock").write_text(json.dumps(data))
    git(root, "commit", "-qam", "stale downstream lock")
    assert (
        at_revision.lock_md5s(root, git(root, "rev-parse", "HEAD").strip())["results/prep.txt"]
        == produced
    )


def test_fresh_clone_shortcut_respects_always_changed(
    corpus: tuple[Path, list[str]], tmp_path: Path
) -> None:
    root, _ = corpus
    text = (root / "dvc.yaml").read_text()
    (root / "dvc.yaml").write_text(
        text.replace("  summary:\n", "  summary:\n    always_changed: true\n")
    )
    dvc(root, "repro", "-q", "-P")
    dvc(root, "remote", "add", "-d", "store", str(tmp_path / "store"))
    dvc(root, "push", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "always changed")
    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(root), str(clone))
    assert pipeline.fresh_clone_up_to_date(clone) is False
    # ... because DVC would run it: the oracle
    dry = dvc(clone, "repro", "--dry", "--allow-missing", "-P").stdout
    assert "Running stage 'summary'" in dry
    # and `repro --pull` on the fresh clone runs it, as DVC does (it ran nothing)
    code, out, err = run_cli("repro", "--pull", cwd=clone)
    assert code == 0, err
    assert out.startswith("Ran: ") and "summary" in out


def test_fresh_clone_shortcut_agrees_with_dvc_on_foreach(
    corpus: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """foreach/matrix pipelines get the shortcut too, and it agrees with DVC."""
    root, _ = corpus
    clone = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(root), str(clone))
    assert pipeline.fresh_clone_up_to_date(clone) is True
    dry = dvc(clone, "repro", "--dry", "--allow-missing", "-P").stdout
    assert "Running stage" not in dry


def test_yaml12_numbers_read_as_dvc_reads_them(corpus: tuple[Path, list[str]]) -> None:
    root, _ = corpus
    values = params.read(root)
    assert values["lr"] == 0.001 and values["model.width"] == 10
    res = subprocess.run(
        [sys.executable, "-m", "dvc", "params", "diff", "HEAD", "HEAD", "--all", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(res.stdout)["params.yaml"]["lr"]["new"] == 0.001


def test_check_reads_foreach_and_cached_metrics(
    corpus: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """`check` on foreach/matrix metrics, the base read from a moved cache: not
    "metric is missing", not "no value at the base"."""
    root, shas = corpus
    moved = tmp_path / "moved-cache"
    shutil.move(str(root / ".dvc" / "cache"), moved)
    dvc(root, "cache", "dir", "--local", str(moved))
    code, out, err = run_cli(
        "check",
        "--base",
        shas[-2],
        "--no-config",
        "--rule",
        "results/train-cc.json:score >= 0.5",
        "--rule",
        "results/eval-2-4.yaml:value: max_drop 0.5",
        cwd=root,
    )
    assert code == 0, out + err
    assert "missing" not in out + err and "no value at the base" not in out + err


def test_stage_list_offline_with_a_frozen_import(tmp_path: Path) -> None:
    """`dvc import` records its source; with the source unreachable (offline), `dvc
    status` fails, and `stage list` lists the pipeline anyway (it exited 1)."""
    src, proj = tmp_path / "src", tmp_path / "proj"
    for d in (src, proj):
        d.mkdir()
        git(d, "init", "-q", "-b", "main")
        dvc(d, "init", "-q")
    (src / "data.txt").write_text("hello\n")
    git(src, "add", "-A")
    git(src, "commit", "-qm", "source")
    git(proj, "commit", "-qm", "init")
    dvc(proj, "import", "-q", str(src), "data.txt")
    (proj / "dvc.yaml").write_text(
        "stages:\n  use:\n    cmd: cp data.txt out.txt\n    deps: [data.txt]\n    outs: [out.txt]\n"
    )
    dvc(proj, "repro", "-q")
    git(proj, "add", "-A")
    git(proj, "commit", "-qm", "pipeline")
    shutil.move(str(src), tmp_path / "gone")
    assert dvc(proj, "status", check=False).returncode != 0  # DVC cannot reach it
    code, out, err = run_cli("stage", "list", cwd=proj)
    assert code == 0, err
    assert "use" in out and "up to date" in out


def test_plain_dvcyaml_fast_path_equals_dvcs_resolver(corpus: tuple[Path, list[str]]) -> None:
    """A dvc.yaml without templating is read as itself, without importing DVC: on every
    dvc.yaml of every commit where that path applies, DVC's resolver gives the same."""
    from mlopskit import _dvc, dvcfiles, yamlio

    root, shas = corpus
    checked = 0
    with dvcfiles.Reader(root) as reader:
        for sha in [*shas, None]:
            for dvcfile in reader.state(sha).dvcfiles:
                text = (reader.read_git(sha, dvcfile) or b"").decode()
                data = yamlio.fast_loads(text, display=dvcfile)
                plain = dvcfiles.plain_doc(data, text)
                if plain is None:
                    continue
                theirs, _ = _dvc.resolve_dvcyaml(
                    dict(data),
                    dvcfile.rpartition("/")[0],
                    lambda p, rev=sha: reader.read_git(rev, p),
                    lambda p, rev=sha: reader.isdir(rev, p),
                    display=dvcfile,
                )
                assert plain == theirs, (sha, dvcfile)
                checked += 1
    assert checked >= 3  # plain/dvc.yaml at three commits and the workspace


def test_gitignored_folder_is_not_part_of_the_pipeline(tmp_path: Path) -> None:
    """A virtualenv inside the project holding some package's dvc.yaml: DVC skips
    git-ignored folders in the workspace, and so does mlopskit (metrics show would
    fail on the package's undeclared metrics)."""
    root = tmp_path / "proj"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    dvc(root, "init", "-q")
    (root / ".gitignore").write_text(".venv/\n")
    pkg = root / ".venv" / "lib" / "pkg" / "templates"
    pkg.mkdir(parents=True)
    (pkg / "dvc.yaml").write_text("metrics:\n  - never.json\n")
    (root / "dvc.yaml").write_text("metrics:\n  - m.json\n")
    (root / "m.json").write_text('{"acc": 0.5}')
    theirs = _dvc_json(root, "metrics", "show")[""]["data"]
    assert set(theirs) == {"m.json"}
    assert metrics.show(Project(root=root)) == {"m.json": {"acc": 0.5}}


# ---------------------------------------------------------------- data changes, lineage

# DVC's own view of the outputs and dependencies a revision records, from its Repo at
# that revision (every dvc.yaml/dvc.lock, foreach/matrix stages, .dvc files).
_INDEX_ORACLE = r"""
import json, sys
from dvc.repo import Repo

repo = Repo(sys.argv[1])
result = {}
for rev in repo.brancher(revs=sys.argv[2:], workspace=False):
    outs, deps = {}, {}
    for stage in repo.index.stages:
        for kind, into in (("outs", outs), ("deps", deps)):
            for o in getattr(stage, kind):
                if o.hash_info and o.hash_info.name == "md5" and o.hash_info.value:
                    path = repo.fs.relpath(o.fs_path, repo.root_dir)
                    where = repo.fs.relpath(stage.path, repo.root_dir)
                    name = getattr(stage, "name", None)
                    into.setdefault(path, [o.hash_info.value, f"{where}:{name}" if name else where])
    result[rev] = {"outs": outs, "deps": deps}
print(json.dumps(result))
"""


def _dvc_index(root: Path, revs: list[str]) -> dict[str, dict[str, dict[str, list[str]]]]:
    res = subprocess.run(
        [sys.executable, "-c", _INDEX_ORACLE, str(root), *revs],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    out: dict[str, dict[str, dict[str, list[str]]]] = json.loads(res.stdout)
    return out


def _in_git(root: Path, rev: str, path: str) -> bool:
    return (
        subprocess.run(
            ["git", "cat-file", "-e", f"{rev}:{path}"], cwd=root, capture_output=True, check=False
        ).returncode
        == 0
    )


def _dvc_diff(root: Path, a: str, b: str) -> dict[str, tuple[str, str | None, str | None]]:
    """`dvc diff --json --show-hash A B` as path -> (status, old md5, new md5), one entry
    per output (a directory output once, not its files; a rename as removed + added)."""
    theirs = _dvc_json(root, "diff", "--show-hash", a, b)
    status = {"added": "added", "deleted": "removed", "modified": "modified"}
    found: dict[str, tuple[str, str | None, str | None]] = {}
    for kind, name in status.items():
        for e in theirs.get(kind, []):
            h = e.get("hash")
            old, new = (
                (h["old"], h["new"])
                if isinstance(h, dict)
                else ((h, None) if name == "removed" else (None, h))
            )
            found[e["path"]] = (name, old, new)
    for e in theirs.get("renamed", []):  # a data change lists it as removed and added
        found[e["path"]["old"]] = ("removed", e["hash"], None)
        found[e["path"]["new"]] = ("added", None, e["hash"])
    dirs = [p for p in found if p.endswith("/")]
    return {
        p.rstrip("/"): v
        for p, v in found.items()
        if not any(p != d and p.startswith(d) for d in dirs)
    }


def test_report_data_changes_equal_dvc_diff_between_revisions(
    corpus: tuple[Path, list[str]],
) -> None:
    """The report's data changes (datadiff) from each commit to the next (and the first
    to the last) are `dvc diff`'s: every dvc.lock (the nested sub/dvc.yaml's foreach
    stage included) and .dvc file, metrics and plots aside (their own sections)."""
    from mlopskit import dvcfiles
    from mlopskit.report import datadiff

    root, shas = corpus
    pairs = [*zip(shas, shas[1:], strict=False), (shas[0], shas[-1])]
    seen_nested = False
    for a, b in pairs:
        git(root, "checkout", "-q", b)
        ours = {
            c.path: (c.status, c.old_md5, c.new_md5) for c in datadiff.diff(root, a, tables=False)
        }
        with dvcfiles.Reader(root) as reader:
            aside = {
                p
                for rev in (a, b)
                for p in (*reader.state(rev).metrics, *(d.file for d in reader.state(rev).plots))
            }
        expected = {
            p: v
            for p, v in _dvc_diff(root, a, b).items()
            if p not in aside and not _in_git(root, b, p) and not _in_git(root, a, p)
        }
        assert ours == expected, (a[:8], b[:8])
        seen_nested |= "sub/out/shard-x.txt" in ours
    assert seen_nested  # the nested foreach stage's outputs are among them
    # and the report shows exactly those
    r = report.build(Project(root=root), base=shas[-2], with_plots=False)
    assert {c.path for c in r.data} == {"sub/out/shard-x.txt", "sub/out/shard-y.txt"}
    assert {c.source for c in r.data} == {
        "stage sub/dvc.yaml:shard@x",
        "stage sub/dvc.yaml:shard@y",
    }


def test_model_lineage_equals_dvcs_index_at_every_commit(
    corpus: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """`model show` / `model card` / `model get` at each registered commit: the data hashes are
    what DVC's Repo at that revision records (outs, else deps; nested dvc.yaml and
    foreach/matrix stages; .dvc files; git-tracked files aside), the model's md5 the
    producing stage's out, the params `dvc params show`'s, the commit that one; the file
    `model get` delivers is the one `dvc get --rev` delivers."""
    from mlopskit.registry import lineage

    root, shas = corpus
    for i, sha in enumerate(shas):
        git(root, "tag", "-a", "-m", "Registering artifact prep", f"prep@v0.{i}.0", sha)
    git(root, "tag", "-a", "-m", "Registering artifact sub:shard", "sub=shard@v1.0.0", shas[-1])
    index = _dvc_index(root, shas)
    project = Project(root=root)
    for i, sha in enumerate(shas):
        theirs = index[sha]
        data = {p: v[0] for p, v in theirs["deps"].items()}
        data.update({p: v[0] for p, v in theirs["outs"].items()})
        data = {p: m for p, m in data.items() if not _in_git(root, sha, p)}
        lin = lineage.show(project, f"prep@v0.{i}.0")
        assert lin.commit == sha
        assert lin.data == data, sha[:8]
        assert lin.model_md5 == theirs["outs"]["results/prep.txt"][0]
        assert lin.model_source == "the outs of stage 'prep' in dvc.lock"
        theirs_params = _dvc_json(root, "params", "diff", sha, sha, "--all")
        expected_params = {
            _label(f, k): v["new"] for f, d in theirs_params.items() for k, v in d.items()
        }
        assert lin.params == expected_params
        card = lineage.card(project, f"prep@v0.{i}.0")
        assert all(f"| {p} | {m} |" in card for p, m in data.items())
        # model get delivers the bytes `dvc get --rev` delivers at that commit.
        got = lineage.get(project, f"prep@v0.{i}.0", tmp_path / f"ours-{i}")
        oracle = tmp_path / f"dvc-{i}.txt"
        dvc(root, "get", ".", "results/prep.txt", "--rev", sha, "-o", str(oracle))
        assert got.path.read_bytes() == oracle.read_bytes(), sha[:8]
    nested = lineage.show(project, "sub:shard")
    shard = index[shas[-1]]["outs"]["sub/out/shard-x.txt"]
    assert shard[1] == "sub/dvc.yaml:shard@x"
    assert nested.model_md5 == shard[0] and nested.path == "sub/out/shard-x.txt"
    assert nested.model_source == "the outs of stage 'sub/dvc.yaml:shard@x' in sub/dvc.lock"
    assert nested.description == "a model declared in a nested dvc.yaml"


def test_cache_local_names_a_remote_section_as_the_cache(
    corpus: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """`[cache] local = NAME`: DVC keeps its objects where that remote section points
    (it wins over cache.dir; the remote in the repo's config, the setting in
    config.local). mlopskit's cache dir is DVC's, and cached metrics read from it."""
    from mlopskit import _dvc

    root, shas = corpus
    moved = tmp_path / "store"
    shutil.move(str(root / ".dvc" / "cache"), moved)
    dvc(root, "remote", "add", "store", str(moved))
    dvc(root, "config", "cache.dir", str(tmp_path / "not-the-cache"))
    dvc(root, "config", "--local", "cache.local", "store")
    oracle = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from dvc.repo import Repo; print(Repo(sys.argv[1]).cache.local_cache_dir)",
            str(root),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(oracle) == moved
    assert _dvc.cache_dir(root) == moved
    assert at_revision.cache_path(root, "ab" * 16).is_relative_to(moved)
    # `dvc cache dir` prints cache.dir (it ignores cache.local); DVC's objects are in moved
    (root / "results" / "eval-1-3.yaml").unlink()
    theirs = _dvc_json(root, "metrics", "show")[""]["data"]["results/eval-1-3.yaml"]["data"]
    assert metrics.read(root)["results/eval-1-3.yaml"] == dotted.flatten(theirs)
    changes = metrics.diff(Project(root=root), base=shas[-2], head=shas[-1])
    assert changes and not [c for c in changes if c.status == "added"]
    theirs_diff = _dvc_json(root, "metrics", "diff", shas[-2], shas[-1], "--all")
    fit = {c.key: (c.old, c.new) for c in changes if c.path == "sub/out/fit.json"}
    assert fit["score"] == (
        theirs_diff["sub/out/fit.json"]["score"]["old"],
        theirs_diff["sub/out/fit.json"]["score"]["new"],
    )


@pytest.mark.slow
def test_fresh_clone_shortcut_equals_dvc_at_every_corpus_commit(
    corpus: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """At each commit of the corpus (foreach, matrix, vars, wdir, nested dvc.yaml, JSON,
    TOML and Python params), a fresh clone: the shortcut answers "up to date" exactly
    when DVC's `repro --allow-missing --dry` would run nothing (all stages, -P)."""
    root, shas = corpus
    rows = []
    for sha in shas:
        clone = tmp_path / f"c-{sha[:8]}"
        git(tmp_path, "clone", "-q", str(root), str(clone))
        git(clone, "checkout", "-q", "--detach", sha)
        res = dvc(clone, "repro", "--dry", "--allow-missing", "-P", check=False)
        theirs = res.returncode == 0 and "Running stage" not in res.stdout
        rows.append((sha[:8], pipeline.fresh_clone_up_to_date(clone), theirs))
    assert all(ours == theirs for _, ours, theirs in rows), rows
    assert any(ours for _, ours, _ in rows), rows  # the shortcut is taken somewhere
