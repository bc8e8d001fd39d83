"""Issue 13, the generated CT, retrain and PR workflows: tokens, forks, credentials, path
filters, merge queue; every variant passes `ci check` (see test_workflows)."""

from __future__ import annotations

from pathlib import Path

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
