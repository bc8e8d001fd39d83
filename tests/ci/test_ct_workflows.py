"""Issue 13, the generated CT, retrain and PR workflows: tokens, forks, credentials, path
filters, merge queue; every variant passes `ci check` (see test_workflows)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mlopskit import yamlio
from mlopskit.ci import workflows
from mlopskit.project import Project

from ..conftest import git, run_cli

INSTALL = "git+https://github.com/acme/mlopskit.git@" + "1234567890abcdef" * 2 + "12345678"


def project(tmp_path: Path, ci: str, dvc_yaml: str | None = None) -> Path:
    root = tmp_path / "p"
    git(tmp_path, "init", "-q", "-b", "main", str(root))
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text("")
    (root / "mlopskit.yaml").write_text(f"ci:\n  install: {INSTALL}\n{ci}")
    if dvc_yaml is not None:
        (root / "dvc.yaml").write_text(dvc_yaml)
    return root


def rendered(root: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    files = workflows.render(Project(root=root))
    return {
        k.rsplit("/", 1)[1]: yamlio.loads(v, display=k)
        for k, v in files.items()
        if "/workflows/" in k
    }


def runs(job: dict) -> list[str]:  # type: ignore[type-arg]
    return [str(s.get("run", "")) for s in job["steps"]]


def test_token_secret_pushes_and_opens_prs_that_start_checks(tmp_path: Path) -> None:
    root = project(
        tmp_path, "  token_secret: CT_TOKEN\n  ct_mode: pull-request\n  remote:\n    kind: s3\n"
    )
    ct = rendered(root)["ct.yml"]["jobs"]["train"]
    step = next(s for s in ct["steps"] if "mlopskit commit" in s.get("run", ""))
    assert step["env"] == {  # and the DVC remote's keys: commit checks the outputs are there
        "GITHUB_TOKEN": "${{ secrets.CT_TOKEN }}",
        "AWS_ACCESS_KEY_ID": "${{ secrets.AWS_ACCESS_KEY_ID }}",
        "AWS_SECRET_ACCESS_KEY": "${{ secrets.AWS_SECRET_ACCESS_KEY }}",
    }
    assert "[skip ci]" not in step["run"] and "--pull-request" in step["run"]
    assert ct["permissions"] == {"contents": "read"}  # GITHUB_TOKEN pushes nothing
    assert ct["environment"] == "ml-training"


def test_pull_request_mode_without_a_token_has_no_skip_ci(tmp_path: Path) -> None:
    root = project(tmp_path, "  ct_mode: pull-request\n  remote:\n    kind: s3\n")
    for name, job in (("ct.yml", "train"), ("retrain.yml", "retrain")):
        script = " ".join(runs(rendered(root)[name]["jobs"][job]))
        assert "mlopskit commit --push --pull-request" in script and "[skip ci]" not in script
    code, out, err = run_cli("ci", "generate", cwd=root)
    assert code == 0, err
    assert "Allow GitHub Actions to create and approve pull requests" in out


def test_fork_prs_skip_credentials_and_never_reach_a_self_hosted_runner(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "  runner: [self-hosted, gpu]\n  remote:\n    kind: s3\n"
        "    role: arn:aws:iam::1:role/ct\n    region: eu-west-1\n"
        "    pr_role: arn:aws:iam::1:role/pr-read-only\n",
    )
    docs = rendered(root)
    pr = docs["pr.yml"]
    job = pr["jobs"]["report"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in job["runs-on"]
    assert "'ubuntu-latest'" in job["runs-on"] and "self-hosted" in job["runs-on"]
    creds = next(s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", ""))
    assert "head.repo.full_name == github.repository" in creds["if"]
    assert creds["with"]["role-to-assume"] == "arn:aws:iam::1:role/pr-read-only"
    repro = next(s for s in job["steps"] if s.get("id") == "repro")
    assert repro["run"] == "mlopskit repro --pull"  # never --push from a pull request
    assert "environment" not in job  # never CT's environment (OIDC: no secrets at all)
    ct_creds = next(
        s
        for s in docs["ct.yml"]["jobs"]["train"]["steps"]
        if "configure-aws-credentials" in s.get("uses", "")
    )
    assert ct_creds["with"]["role-to-assume"] == "arn:aws:iam::1:role/ct"
    assert "merge_group" in pr["on"]
    comment = pr["jobs"]["comment"]["if"]
    assert comment.startswith("${{ !cancelled()") and "always()" not in comment


_TOKEN = re.compile(r"'(?:[^']|'')*'|&&|\|\||==|!=|!|[()]|,|[A-Za-z_][\w.\-\[\]]*|\s+")


def evaluate(expression: str, context: dict[str, str]) -> Any:
    """A GitHub expression of the kind the templates write (strings, context names,
    ==, !=, !, &&, ||, parentheses, fromJSON), evaluated with GitHub's semantics: && and
    || return an operand, as Python's `and` and `or` do."""
    body = expression.strip()
    if body.startswith("${{"):
        assert body.endswith("}}"), expression
        body = body[3:-2]
    out = []
    pos = 0
    while pos < len(body):
        m = _TOKEN.match(body, pos)
        assert m is not None, (body[pos:], expression)
        tok, pos = m.group(0), m.end()
        if tok.startswith("'"):
            out.append(repr(tok[1:-1].replace("''", "'")))
        elif tok in ("&&", "||", "!"):
            out.append({"&&": " and ", "||": " or ", "!": " not "}[tok])
        elif tok == "fromJSON":
            out.append("json.loads")
        elif tok[0].isalpha() or tok[0] == "_":
            assert tok in context, f"{tok} is not in the test's context ({expression})"
            out.append(repr(context[tok]))
        else:
            out.append(tok)
    return eval("".join(out), {"json": json, "__builtins__": {}})  # noqa: S307


def _pr_context(head: str, actor: str) -> dict[str, str]:
    return {
        "github.event_name": "pull_request",
        "github.repository": "acme/models",
        "github.event.pull_request.head.repo.full_name": head,
        "github.actor": actor,
    }


def test_fork_prs_never_run_on_a_self_hosted_runner_in_any_workflow(tmp_path: Path) -> None:
    """Every job of every generated workflow that a pull request triggers: its runs-on,
    evaluated for a fork's (and Dependabot's) pull request, is a GitHub-hosted runner; a
    same-repository pull request and a push get the configured self-hosted one."""
    root = project(
        tmp_path,
        "  runner: [self-hosted, linux, gpu]\n  remote:\n    kind: s3\n"
        "    role: arn:aws:iam::1:role/ct\n    region: eu-west-1\n",
    )
    contexts = {
        "fork": _pr_context("mallory/models", "mallory"),
        "dependabot": _pr_context("acme/models", "dependabot[bot]"),
        "same-repo": _pr_context("acme/models", "alice"),
        "push": {**_pr_context("", "alice"), "github.event_name": "push"},
    }
    checked = set()
    for name, doc in rendered(root).items():
        on = doc.get("on") or doc[True]
        if "pull_request" not in on and "pull_request_target" not in on:
            continue
        for job_name, job in doc["jobs"].items():
            runs_on = job["runs-on"]
            where = f"{name}:{job_name}"
            if not isinstance(runs_on, str) or "${{" not in runs_on:
                labels = [runs_on] if isinstance(runs_on, str) else runs_on
                assert all(str(x).startswith("ubuntu-") for x in labels), (where, runs_on)
                continue
            for who in ("fork", "dependabot"):
                assert evaluate(runs_on, contexts[who]) == "ubuntu-latest", (where, who)
            for who in ("same-repo", "push"):
                assert evaluate(runs_on, contexts[who]) == ["self-hosted", "linux", "gpu"], (
                    where,
                    who,
                )
            checked.add(name)
    assert checked == {"ci.yml", "pr.yml"}, checked


def test_pr_secrets_live_in_their_own_environment_and_key_files_are_removed(
    tmp_path: Path,
) -> None:
    root = project(
        tmp_path, "  remote:\n    kind: ssh\n    secrets: [CT_KEY]\n    pr_secrets: [READ_KEY]\n"
    )
    docs = rendered(root)
    job = docs["pr.yml"]["jobs"]["report"]
    assert job["environment"] == "ml-pull-requests"
    key = next(s for s in job["steps"] if "DVC_SSH_KEY" in s.get("env", {}))
    assert key["env"]["DVC_SSH_KEY"] == "${{ secrets.READ_KEY }}"
    assert key["run"].startswith("umask 077\n") and "head.repo.full_name" in key["if"]
    for name, job_name in (("pr.yml", "report"), ("ct.yml", "train")):
        last = docs[name]["jobs"][job_name]["steps"][-1]
        assert last["if"] == "always()" and last["run"].startswith("rm -f ")
        assert "dvc_remote_key" in last["run"]
    assert "CT_KEY" in str(docs["ct.yml"]["jobs"]["train"]) and "CT_KEY" not in str(job)


def test_ct_paths_come_from_every_stage_and_ci_check_warns_when_stale(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "  remote:\n    kind: s3\n",
        "stages:\n  prep:\n    cmd: python tools/prep.py\n"
        "    deps: [tools/prep.py, data/schema.yaml]\n"
        "    outs: [data/clean.csv]\n  train:\n    cmd: python -m src.train\n"
        "    deps: [data/clean.csv, src/train.py]\n"
        "    params: [train.C, {conf/model.yaml: [depth]}]\n",
    )
    nested = root / "models" / "ranker"
    nested.mkdir(parents=True)
    (nested / "dvc.yaml").write_text(
        "stages:\n  rank:\n    cmd: python rank.py\n    wdir: .\n    deps: [rank.py, ../../lib]\n"
    )
    (root / "lib").mkdir()
    paths = rendered(root)["ct.yml"]["on"]["push"]["paths"]
    for wanted in (
        "data/schema.yaml",
        ".dvc/config",
        "tools/prep.py",
        "conf/model.yaml",
        "params.yaml",
        "models/ranker/dvc.yaml",
        "models/ranker/rank.py",
        "lib/**",
        "**.dvc",
    ):
        assert wanted in paths, (wanted, paths)
    assert "data/clean.csv" not in paths and "dvc.lock" not in paths
    workflows.generate(Project(root=root))
    code, _, err = run_cli("ci", "check", cwd=root)
    assert "paths filter is stale" not in err
    (root / "dvc.yaml").write_text(
        (root / "dvc.yaml").read_text().replace("data/schema.yaml", "data/rules.yaml")
    )
    code, _, err = run_cli("ci", "check", cwd=root)
    assert "paths filter is stale" in err and "data/rules.yaml" in err
    assert "mlopskit ci generate" in err


def test_init_with_a_local_path_remote_on_hosted_runners_warns(tmp_path: Path) -> None:
    code, out, err = run_cli("init", "p", "--remote", str(tmp_path / "store"))
    assert code == 0, err
    assert "ci.remote.kind is local" in err and "ci.runner is ubuntu-latest" in err
    assert "On GitHub, CI needs:" in out
    code, _, err = run_cli("init", "q")
    assert code == 0
    assert "CI cannot reach a DVC remote (ci.remote.kind: none)" in err
    assert "mlopskit remote add" in err


def test_every_new_variant_passes_ci_check(tmp_path: Path) -> None:
    variants = {
        "token": "  token_secret: CT_TOKEN\n  ct_mode: pull-request\n  remote:\n    kind: s3\n",
        "pr-secrets": "  runner: [self-hosted, gpu]\n  remote:\n    kind: azure\n"
        "    pr_secrets: [AZURE_READ]\n    pr_environment: pr-data\n",
        "gs-key": "  runner: [self-hosted, gpu]\n  remote:\n    kind: gs\n",
    }
    for name, ci in variants.items():
        (tmp_path / name).mkdir()
        root = project(tmp_path / name, ci, "stages:\n  a:\n    cmd: x\n    deps: [src/a.py]\n")
        workflows.generate(Project(root=root))
        (root / ".github" / "actionlint.yaml").write_text("self-hosted-runner:\n  labels: [gpu]\n")
        res = workflows.check(Project(root=root))
        assert res.findings == [], (name, res.findings)
        assert {"zizmor", "actionlint", "check-jsonschema"} <= set(res.ran), res.missing


def test_pr_secrets_are_passed_as_the_variables_the_remote_reads(tmp_path: Path) -> None:
    root = project(
        tmp_path, "  remote:\n    kind: s3\n    pr_secrets: [AWS_READ_ID, AWS_READ_SECRET]\n"
    )
    job = rendered(root)["pr.yml"]["jobs"]["report"]
    repro = next(s for s in job["steps"] if s.get("id") == "repro")
    assert repro["env"] == {
        "AWS_ACCESS_KEY_ID": "${{ secrets.AWS_READ_ID }}",
        "AWS_SECRET_ACCESS_KEY": "${{ secrets.AWS_READ_SECRET }}",
    }
    (root / "mlopskit.yaml").write_text(
        f"ci:\n  install: {INSTALL}\n  remote:\n    kind: s3\n    pr_secrets: [ONE]\n"
    )
    code, _, err = run_cli("ci", "generate", cwd=root)
    assert code == 2 and "ci.remote.pr_secrets names 1 secret(s)" in err
    (root / "mlopskit.yaml").write_text(
        f"ci:\n  install: {INSTALL}\n  remote:\n    kind: s3\n    pr_environment: ml-training\n"
    )
    code, _, err = run_cli("ci", "generate", cwd=root)
    assert code == 2 and "pr_environment is CT's environment" in err


def test_ct_paths_include_foreach_and_nested_stage_deps(repo) -> None:  # type: ignore[no-untyped-def]
    """The paths filter comes from the one reader of DVC state: a foreach stage's deps and
    a nested dvc.yaml's deps and params start CT; their outputs do not."""
    repo.write(
        "dvc.yaml",
        "stages:\n  prep:\n    foreach: [a, b]\n    do:\n"
        "      cmd: cp raw/${item}.csv out/${item}.csv\n"
        "      deps:\n        - raw/${item}.csv\n      outs:\n        - out/${item}.csv\n",
    )
    repo.write(
        "sub/dvc.yaml",
        "stages:\n  fit:\n    cmd: python fit.py\n    deps: [fit.py]\n"
        "    params: [lr]\n    outs: [model.bin]\n",
    )
    repo.write("sub/params.yaml", "lr: 0.1\n")
    paths = workflows.ct_paths(Project(root=repo.root))
    assert {"raw/a.csv", "raw/b.csv", "sub/fit.py", "sub/dvc.yaml", "sub/params.yaml"} <= set(
        paths
    ), paths
    assert not {"out/a.csv", "sub/model.bin"} & set(paths)


def test_ci_environment_policy_admits_main_and_the_registry_tags_deploy_runs_on(
    tmp_path: Path,
) -> None:
    """deploy.yml's deploy job is bound to CT's environment and runs on the tag's ref: what
    `ci generate` prints to set on GitHub admits main and the stage tags, not main alone."""
    root = project(tmp_path, "  remote:\n    kind: s3\n")
    deploy = rendered(root)["deploy.yml"]
    assert deploy["jobs"]["deploy"]["environment"] == "ml-training"
    assert deploy["on"]["push"]["tags"] == ["**#*", "**@*"]
    code, out, err = run_cli("ci", "generate", cwd=root)
    assert code == 0, err
    line = next(x for x in out.splitlines() if "AWS_ACCESS_KEY_ID" in x)
    assert "'ml-training'" in line and "deploy" in line
    assert "admit the branch main and the tags *#*" in line, line
    assert "deploy runs on the registry tag's ref" in line
    assert "sweeps dispatched from another branch need that branch too" in line


def test_a_subfolder_deploy_runs_on_nested_artifacts_tags(tmp_path: Path) -> None:
    """A sub-folder project's deploy triggers come from every dvc.yaml of the project (the
    one reader of DVC state): an artifact of a nested dvc.yaml is GTO's `dir:name`, tagged
    `dir=name#...`; the environment's tag rules printed by `ci generate` name it too."""
    top = tmp_path / "mono"
    git(tmp_path, "init", "-q", "-b", "main", str(top))
    root = top / "models" / "churn"
    (root / ".dvc").mkdir(parents=True)
    (root / ".dvc" / "config").write_text("")
    (root / "mlopskit.yaml").write_text(f"ci:\n  install: {INSTALL}\n  remote:\n    kind: s3\n")
    (root / "dvc.yaml").write_text(
        "stages: {}\nartifacts:\n  churn-model:\n    path: m.pkl\n    type: model\n"
    )
    (root / "ranker").mkdir()
    (root / "ranker" / "dvc.yaml").write_text(
        "stages: {}\nartifacts:\n  rank-model:\n    path: r.pkl\n    type: model\n"
        "  Bad_Name!:\n    path: x.pkl\n"
    )
    files = workflows.render(Project(root=root))
    deploy = yamlio.loads(files[".github/workflows/deploy-models-churn.yml"], display="deploy")
    assert deploy["on"]["push"]["tags"] == [
        "churn-model#*",
        "churn-model@*",
        "ranker=rank-model#*",
        "ranker=rank-model@*",
        "models/churn=**#*",
        "models/churn=**@*",
    ]
    assert workflows.deploy_tag_rules(Project(root=root)) == [
        "churn-model#*",
        "models/churn=*#*",
        "ranker=rank-model#*",
    ]
    code, out, err = run_cli("ci", "generate", cwd=root)
    assert code == 0, err
    assert "the tags churn-model#*, models/churn=*#*, ranker=rank-model#*" in out, out


def test_ci_generate_takes_the_remote_kind_from_the_committed_default_remote(
    tmp_path: Path,
) -> None:
    """The fix the "not evaluated" summary gives, verbatim: `remote add ... --default &&
    ci generate` gives CT a remote without editing ci.remote.kind by hand."""
    root = project(tmp_path, "  remote:\n    kind: none   # none, local, s3, gs, azure or ssh\n")
    code, _, err = run_cli("ci", "generate", cwd=root)
    assert code == 0, err
    assert "ci.remote.kind: none" in err  # the warning, with the fix
    assert "mlopskit remote add storage s3://BUCKET/PATH --default (or gs://, azure://" in err
    assert "&& mlopskit ci generate" in err
    ct = rendered(root)["ct.yml"]["jobs"]["train"]
    assert "mlopskit repro --pull --push" not in runs(ct)
    code, _, err = run_cli("remote", "add", "storage", "s3://bucket/store", "--default", cwd=root)
    assert code == 0, err
    code, out, err = run_cli("ci", "generate", cwd=root)
    assert code == 0, err
    assert (
        "Set ci.remote.kind: s3 in mlopskit.yaml (it was none), from the committed default "
        "DVC remote 'storage' (s3://bucket/store); commit it with the workflows"
    ) in out, out
    text = (root / "mlopskit.yaml").read_text()
    assert re.search(r"\n    kind: s3 +# none, local, s3, gs, azure or ssh\n", text), text
    assert "CI cannot reach a DVC remote" not in err
    assert "secrets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY" in out
    ct = rendered(root)["ct.yml"]["jobs"]["train"]
    assert "mlopskit repro --pull --push" in runs(ct)
    assert any("mlopskit commit --push" in r for r in runs(ct))
    code, out, _ = run_cli("ci", "generate", cwd=root)  # nothing more to adopt
    assert code == 0 and "Set ci.remote.kind" not in out
    # a local path is not something a runner reaches: kind stays none, with the warning
    (tmp_path / "o").mkdir()
    other = project(tmp_path / "o", "")
    code, _, err = run_cli("remote", "add", "nas", str(tmp_path / "store"), "--default", cwd=other)
    assert code == 0, err
    code, out, err = run_cli("ci", "generate", cwd=other)
    assert code == 0 and "Set ci.remote.kind" not in out
    assert "CI cannot reach a DVC remote (ci.remote.kind: none)" in err
    assert "kind" not in (other / "mlopskit.yaml").read_text()


def test_oidc_pull_requests_without_a_read_only_identity_warn_and_subjects_are_listed(
    tmp_path: Path,
) -> None:
    oidc = "  remote:\n    kind: s3\n    role: arn:aws:iam::1:role/ct\n    region: eu-west-1\n"
    root = project(tmp_path, oidc)
    creds = next(
        s
        for s in rendered(root)["pr.yml"]["jobs"]["report"]["steps"]
        if "configure-aws-credentials" in s.get("uses", "")
    )
    assert creds["with"]["role-to-assume"] == "arn:aws:iam::1:role/ct"  # the fallback
    code, out, err = run_cli("ci", "generate", cwd=root)
    assert code == 0, err
    assert (
        "ci.remote.pr_role is not set: pull-request jobs (which run the PR's code) log in as "
        "CT's identity ci.remote.role (arn:aws:iam::1:role/ct)"
    ) in err
    for subject in (
        "repo:OWNER/REPO:ref:refs/heads/main",
        "repo:OWNER/REPO:ref:refs/tags/*",
        "repo:OWNER/REPO:pull_request",
        "repo:OWNER/REPO:ref:refs/heads/gh-readonly-queue/main/*",
    ):
        assert subject in out, (subject, out)
    code, _, err = run_cli("ci", "check", cwd=root)
    assert "ci.remote.pr_role is not set" in err
    (root / "mlopskit.yaml").write_text(
        f"ci:\n  install: {INSTALL}\n{oidc}    pr_role: arn:aws:iam::1:role/read\n"
        "  token_secret: CT_TOKEN\n"
    )
    code, out, err = run_cli("ci", "generate", cwd=root)
    assert code == 0, err
    assert "pr_role is not set" not in err
    # ci.token_secret binds CT to its environment: OIDC's subject names the environment
    assert "repo:OWNER/REPO:environment:ml-training" in out
    (tmp_path / "gs").mkdir()
    gs = project(
        tmp_path / "gs",
        "  remote:\n    kind: gs\n    workload_identity_provider: projects/1/x\n"
        "    service_account: ct@p.iam.gserviceaccount.com\n",
    )
    code, _, err = run_cli("ci", "generate", cwd=gs)
    assert "ci.remote.pr_service_account is not set" in err, err


def test_commit_mode_branch_protection_needs_a_bypass_or_pull_request_mode(
    tmp_path: Path,
) -> None:
    root = project(tmp_path, "  remote:\n    kind: s3\n")
    code, out, err = run_cli("ci", "generate", cwd=root)
    assert code == 0, err
    line = next(x for x in out.splitlines() if "branch protection on main" in x)
    assert "require the 'report and quality gate' check" in line
    assert "CT pushes to main directly (ct_mode: commit)" in line
    assert "unless GitHub Actions may bypass it" in line
    assert "set ct_mode: pull-request" in line
    (root / "mlopskit.yaml").write_text(
        f"ci:\n  install: {INSTALL}\n  ct_mode: pull-request\n  remote:\n    kind: s3\n"
    )
    code, out, err = run_cli("ci", "generate", cwd=root)
    assert code == 0, err
    line = next(x for x in out.splitlines() if "branch protection on main" in x)
    assert "bypass" not in line and "'report and quality gate'" in line


@pytest.mark.slow
def test_quickstart_names_the_ci_install_warning_when_no_source_is_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """quickstart from an editable install (these tests' own mlopskit): its workflows'
    mlopskit step fails the job, and quickstart says so and how to fix it. Installed from
    a pinned git commit (a PEP 610 record saying so), it does not."""
    code, out, err = run_cli("quickstart", "demo", "--dataset", "wine", cwd=tmp_path)
    assert code == 0, err
    ct = (tmp_path / "demo" / ".github" / "workflows" / "ct.yml").read_text()
    assert "Install mlopskit (no source known; set ci.install)" in ct
    assert (
        "Warning: the workflows cannot install mlopskit yet: mlopskit is an editable install "
        "of a local folder, which a runner cannot reach; set ci.install in mlopskit.yaml"
    ) in err, err
    assert "CI cannot reach a DVC remote (ci.remote.kind: none)" in err  # still there too

    # the same mlopskit, as `pip install git+https://...@COMMIT` records it
    site = tmp_path / "site"
    info = site / "mlopskit-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mlopskit\nVersion: 0.1.0\n")
    commit = "ab" * 20
    (info / "direct_url.json").write_text(
        json.dumps(
            {
                "url": "https://github.com/acme/mlopskit.git",
                "vcs_info": {"vcs": "git", "commit_id": commit},
            }
        )
    )
    monkeypatch.syspath_prepend(str(site))
    code, out, err = run_cli("quickstart", "demo2", "--dataset", "wine", cwd=tmp_path)
    assert code == 0, err
    assert "ci.install" not in err and "cannot install mlopskit" not in err, err
    ct = (tmp_path / "demo2" / ".github" / "workflows" / "ct.yml").read_text()
    assert f"git+https://github.com/acme/mlopskit.git@{commit}" in ct
    assert "no source known" not in ct
