"""mlopskit report: the pull-request report, its awkward cases, and posting it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from mlopskit import errors, params
from mlopskit.pipeline import run as pipeline
from mlopskit.report import build as report
from mlopskit.report import render as report_render

from ..conftest import Repo, run_cli
from ..fake_github import State, serve


@pytest.fixture
def branch(trained: Repo) -> Repo:
    """The trained quickstart project on a branch with a param change and fewer rows."""
    trained.git("checkout", "-q", "-b", "feature")
    params.set_params(trained.project(), ["train.C=0.05"])
    raw = trained.root / "data" / "raw" / "data.csv"
    lines = raw.read_text().splitlines(keepends=True)
    raw.write_text("".join(lines[:-30]))
    from mlopskit import data

    data.add(trained.project(), ["data/raw/data.csv"], message="fewer rows")
    pipeline.repro(trained.project(), commit=True, message="retrain")
    return trained


@pytest.mark.slow
def test_report_markdown_with_plots_and_data(branch: Repo, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.md"
    code, _, err = run_cli("report", "--base", "main", "--out", str(out), cwd=branch.root)
    assert code == 0, err
    text = out.read_text()
    assert text.startswith(report_render.MARKER)
    assert "✅ **Quality gate passed** (2 rule(s))." in text
    assert "| train.C | 1 | 0.05 | modified |" in text
    assert "| accuracy |" in text and "| roc_auc |" in text
    assert "| data/raw/data.csv | data | modified |" in text
    assert "rows 569 → 539 (+0 / −30)" in text
    assert "| models/model.skops | stage train | modified |" in text
    assert "dvc.lock: in sync with the workspace" in text
    for name in ("confusion_matrix", "roc"):
        for side in ("base", "head"):
            png = out.parent / "report_assets" / f"{name}-{side}.png"
            assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
            assert f'<img src="report_assets/{name}-{side}.png"' in text


@pytest.mark.slow
def test_report_json_and_html(branch: Repo, tmp_path: Path) -> None:
    code, out, err = run_cli(
        "report", "--base", "main", "--format", "json", "--no-plots", cwd=branch.root
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["base"] == "main" and data["passed"] is True
    assert [p["key"] for p in data["params"]] == ["train.C"]
    acc = next(m for m in data["metrics"] if m["key"] == "accuracy")
    assert set(acc) >= {"old", "new", "change", "rel", "better"}
    code, _, err = run_cli(
        "report",
        "--base",
        "main",
        "--format",
        "html",
        "--out",
        str(tmp_path / "r.html"),
        cwd=branch.root,
    )
    assert code == 0, err
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!doctype html>") and "<table>" in page
    assert page.count("data:image/png;base64,") == 4


def test_gate_verdict_in_report(repo: Repo) -> None:
    repo.write("mlopskit.yaml", "gates:\n  - acc >= 0.9\n  - 'acc: max_drop 0.01'\n")
    repo.write("dvc.yaml", "metrics:\n  - m.json\n")
    repo.write("m.json", '{"acc": 0.95}')
    repo.git("add", "-A")
    repo.git("commit", "-qm", "base")
    repo.write("m.json", '{"acc": 0.91}')
    r = report.build(repo.project(), base="HEAD", with_plots=False)
    md = report_render.markdown(r)
    assert "❌ **Quality gate failed**: `acc: max_drop 0.01`" in md
    assert "| acc | 0.95 | 0.91 | -0.04 | -4.21% | 🔴 ▼ worse |" in md


def test_first_pr_without_base_metrics(repo: Repo) -> None:
    repo.write("dvc.yaml", "metrics:\n  - m.json\n")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "no metrics yet")
    repo.write("m.json", '{"acc": 0.5}')
    r = report.build(repo.project(), base="HEAD", with_plots=False)
    md = report_render.markdown(r)
    assert "No metrics at the base HEAD" in md
    assert "| acc | — | 0.5 | — | — | added |" in md


def test_renamed_removed_and_non_numeric_metrics(repo: Repo) -> None:
    repo.write("dvc.yaml", "metrics:\n  - m.json\n")
    repo.write("m.json", '{"acc": 0.5, "old_name": 1, "note": "x"}')
    repo.git("add", "-A")
    repo.git("commit", "-qm", "base")
    repo.write("m.json", '{"acc": NaN, "new_name": 1, "note": "y"}')
    md = report_render.markdown(report.build(repo.project(), base="HEAD", with_plots=False))
    assert "| acc | 0.5 | nan | — | — | not numeric |" in md
    assert "| old_name | 1 | — | — | — | removed |" in md
    assert "| new_name | — | 1 | — | — | added |" in md
    assert "| note | x | y | — | — | not numeric |" in md


def test_base_not_found_is_exit_2(repo: Repo) -> None:
    code, _, err = run_cli("report", "--base", "no-such-branch", cwd=repo.root)
    assert code == errors.USAGE
    assert "no-such-branch" in err and err.count("\n") == 1


def test_hostile_names_are_escaped(repo: Repo) -> None:
    repo.write("dvc.yaml", "metrics:\n  - m.json\n")
    repo.write("m.json", json.dumps({"a|b<script>": 1}))
    md = report_render.markdown(report.build(repo.project(), base="HEAD", with_plots=False))
    assert "<script>" not in md and "a\\|b&lt;script&gt;" in md


def test_long_report_is_folded_under_githubs_limit(repo: Repo) -> None:
    repo.write("dvc.yaml", "metrics:\n  - m.json\n")
    repo.write("params.yaml", "\n".join(f"p{i}: {i}" for i in range(4000)) + "\n")
    repo.write("m.json", json.dumps({f"metric_{i}": i for i in range(3000)}))
    repo.git("add", "-A")
    repo.git("commit", "-qm", "base")
    repo.write("params.yaml", "\n".join(f"p{i}: {i + 1}" for i in range(4000)) + "\n")
    repo.write("m.json", json.dumps({f"metric_{i}": i * 2 for i in range(3000)}))
    md = report_render.markdown(report.build(repo.project(), base="HEAD", with_plots=False))
    assert len(md) <= report_render.COMMENT_LIMIT
    assert "<details><summary>More:" in md
    assert "characters cut to fit GitHub's 65,536-character comment limit" in md
    assert md.rstrip().endswith("</details>")


# ------------------------------------------------------------------ posting


def _env(tmp_path: Path, url: str, state: State, pr: int = 7) -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": pr, "head": {"sha": "abc123def456"}}}))
    return {
        "GITHUB_TOKEN": state.token,
        "GITHUB_REPOSITORY": state.repo,
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_API_URL": url,
        "GITHUB_SERVER_URL": "https://github.test",
    }


def _report_with_plot(repo: Repo) -> report.Report:
    repo.write("dvc.yaml", "metrics:\n  - m.json\nplots:\n  - loss.csv\n")
    repo.write("m.json", '{"acc": 0.5}')
    repo.write("loss.csv", "step,loss\n0,1.0\n1,0.5\n")
    repo.git("add", "-A")
    repo.git("commit", "-qm", "base")
    repo.write("m.json", '{"acc": 0.6}')
    repo.write("loss.csv", "step,loss\n0,0.9\n1,0.3\n")
    return report.build(repo.project(), base="HEAD")


def test_post_creates_then_updates_one_comment(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlopskit.report import github

    state = State()
    state.comments.append({"id": 1, "body": "LGTM", "html_url": "x"})
    r = _report_with_plot(repo)
    with serve(state) as url:
        env = _env(tmp_path, url, state)
        first = github.post_report(r, env=env)
        assert first.action == "created" and first.notes == []
        calls = [(m, p) for m, p, _ in state.requests]
        base = "/repos/acme/churn"
        assert calls == [
            ("POST", f"{base}/git/blobs"),
            ("POST", f"{base}/git/blobs"),
            ("GET", f"{base}/git/ref/heads/mlopskit-assets"),
            ("POST", f"{base}/git/trees"),
            ("POST", f"{base}/git/commits"),
            ("POST", f"{base}/git/refs"),
            ("GET", f"{base}/issues/7/comments?per_page=100"),
            ("POST", f"{base}/issues/7/comments"),
        ]
        blob = state.requests[0][2]
        assert base64.b64decode(blob["content"]).startswith(b"\x89PNG")
        tree = state.requests[3][2]["tree"]
        assert {e["path"] for e in tree} == {
            "pr-7/abc123def456/loss.csv-base.png",
            "pr-7/abc123def456/loss.csv-head.png",
        }
        body = state.requests[-1][2]["body"]
        assert body.startswith(report_render.MARKER)
        commit_sha = state.refs["mlopskit-assets"]
        assert (
            f'<img src="https://github.test/acme/churn/raw/{commit_sha}/pr-7/abc123def456/'
            f'loss.csv-head.png"'
        ) in body
        assert body.rstrip().endswith(
            '![](https://cml.dev/watermark.png#abc123def456 "CML watermark mlopskit")'
        )

        state.requests.clear()
        second = github.post_report(r, env=env)
        assert second.action == "updated" and second.comment_id == first.comment_id
        assert [m for m, _, _ in state.requests][-2:] == ["GET", "PATCH"]
        assert state.requests[-1][1] == f"{base}/issues/comments/{first.comment_id}"
        # The second image commit builds on the first (base_tree + parent): no history lost.
        trees = [b for m, p, b in state.requests if p.endswith("/git/trees")]
        assert trees[0]["base_tree"]
        assert any(
            m == "PATCH" and p.endswith("/git/refs/heads/mlopskit-assets")
            for m, p, _ in state.requests
        )
        assert len(state.comments) == 2


def test_post_updates_a_cml_comment_and_paginates(repo: Repo, tmp_path: Path) -> None:
    from mlopskit.report import github

    state = State(page_size=2)
    state.comments += [{"id": i, "body": f"c{i}", "html_url": "x"} for i in range(1, 5)]
    cml = '![](https://cml.dev/watermark.png#deadbeef "CML watermark mlopskit")'
    state.comments.append({"id": 50, "body": f"old report\n\n{cml}", "html_url": "x"})
    r = _report_with_plot(repo)
    with serve(state) as url:
        posted = github.post_report(r, env=_env(tmp_path, url, state))
    assert posted.action == "updated" and posted.comment_id == 50
    assert sum(1 for m, p, _ in state.requests if m == "GET" and "/comments" in p) == 3


def test_post_without_write_access_falls_back_to_tables(repo: Repo, tmp_path: Path) -> None:
    from mlopskit.report import github

    state = State(readonly=True)
    r = _report_with_plot(repo)
    with serve(state) as url:
        posted = github.post_report(r, env=_env(tmp_path, url, state))
    assert posted.action == "created"
    assert "cannot write" in posted.notes[0]
    body = state.comments[0]["body"]
    assert "<img" not in body and "cannot publish images" in body
    assert "| acc | 0.5 | 0.6 |" in body


def test_post_errors(repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _report_with_plot(repo)
    state = State()
    with serve(state) as url:
        env = _env(tmp_path, url, state)
        env["GITHUB_TOKEN"] = "wrong-token"
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        code, _, err = run_cli("report", "--base", "HEAD", "--post", "--no-plots", cwd=repo.root)
        assert code == errors.REMOTE and "Bad credentials" in err
        assert "wrong-token" not in err
    monkeypatch.delenv("GITHUB_TOKEN")
    code, _, err = run_cli("report", "--base", "HEAD", "--post", cwd=repo.root)
    assert code == errors.USAGE and "GITHUB_TOKEN" in err
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9")
    code, _, err = run_cli("report", "--base", "HEAD", "--post", "--no-plots", cwd=repo.root)
    assert code == errors.REMOTE and "unreachable" in err


def test_lineage_lists_tracked_changes_only(repo: Repo) -> None:
    """The report's "Uncommitted changes" are tracked files that differ from HEAD
    (scm.dirty_tracked, seen from the project): not untracked files."""
    repo.write("params.yaml", "train:\n  lr: 0.2\n  epochs: 3\n")
    repo.write("notes.txt", "scratch\n")
    assert report.lineage(repo.project()).dirty == ["params.yaml"]
