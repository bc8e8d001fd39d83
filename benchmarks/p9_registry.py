"""P9: reading the model registry on 1,500 GTO tags.

``mlopskit model list --json`` against ``gto show --json`` on a repository of 300 commits
and 1,500 annotated GTO tags (10 artifacts: registrations, numbered and simple-notation
assignments, unassignments, a deregistration and a deprecation), in the same run.
Target: mlopskit at most 0.2x GTO (gto#156 reports 6-12 s for ``gto show`` at this size).
Also timed, for information: GTO's Python API (``gto.api.show``) in-process, which is why
mlopskit reads the tags itself (mlopskit/_gto.py). Afterwards the two outputs are
compared: latest version and stage -> version of every artifact must be equal.

    python benchmarks/p9_registry.py [--runs N] [--quick] [--json FILE]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

TARGET = 0.2
T0 = 1_750_000_000
API = "import gto.api, sys\ngto.api.show(sys.argv[1])\n"


def build(repo: Path, tags: int, env: dict[str, str]) -> int:
    """300 commits and ``tags`` annotated tags, written with git plumbing (fast)."""
    c.plain_repo(repo, env)
    (repo / "mlopskit.yaml").write_text("project:\n  name: p9\n")
    c.run(["git", "add", "mlopskit.yaml"], cwd=repo, env=env)
    c.run(["git", "commit", "-q", "-m", "mlopskit.yaml"], cwd=repo, env=env)

    def out(cmd: list[str], stdin: str | None = None, **extra: str) -> str:
        import subprocess

        res = subprocess.run(
            cmd, cwd=repo, env={**env, **extra}, input=stdin, capture_output=True, text=True
        )
        if res.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)}: {res.stderr}")
        return res.stdout.strip()

    commits = [out(["git", "rev-parse", "HEAD"])]
    for i in range(299):
        when = f"@{T0 + i * 10} +0000"
        commits.append(
            out(
                ["git", "commit-tree", f"{commits[-1]}^{{tree}}", "-p", commits[-1], "-m", f"c{i}"],
                GIT_COMMITTER_DATE=when,
                GIT_AUTHOR_DATE=when,
            )
        )
    c.run(["git", "update-ref", "refs/heads/main", commits[-1]], cwd=repo, env=env)
    # One `git tag` per tag would take minutes: all tag objects go through one fast-import.
    stream: list[str] = []
    clock = T0 + 10_000
    made = 0
    per_artifact = tags // 10
    for a in range(10):
        name = f"model-{a}"
        counter = 0
        v = 0
        while made < (a + 1) * per_artifact:
            commit = commits[(a * 37 + v) % len(commits)]
            clock += 1
            kind, tag = "reg", f"{name}@v1.{v // 100}.{v % 100}"
            step = made % 5
            if step == 2:
                counter += 1
                kind, tag = "assign", f"{name}#{['dev', 'staging', 'prod'][v % 3]}#{counter}"
            elif step == 3:
                counter += 1
                kind, tag = "assign", f"{name}#canary#{counter}"
            elif step == 4:
                counter += 1
                kind, tag = "unassign", f"{name}#canary!#{counter}"
            if kind == "reg":
                v += 1
            else:
                commit = commits[(a * 37 + v - 1) % len(commits)]
            msg = f"{kind} {tag}\n"
            stream.append(
                f"tag {tag}\nfrom {commit}\ntagger bench <bench@mlopskit.invalid> {clock} +0000\n"
                f"data {len(msg.encode())}\n{msg}\n"
            )
            made += 1
    # GTO's other event kinds, once each
    extra = [
        ("model-0#prod", commits[1]),  # simple notation, newest
        ("model-1@v1.0.0!", commits[37]),  # deregistration
        ("model-9@deprecated", commits[0]),
    ]
    for tag, commit in extra:
        clock += 1
        msg = f"{tag}\n"
        stream.append(
            f"tag {tag}\nfrom {commit}\ntagger bench <bench@mlopskit.invalid> {clock} +0000\n"
            f"data {len(msg.encode())}\n{msg}\n"
        )
        made += 1
    out(["git", "fast-import", "--quiet"], "".join(stream))
    return int(out(["git", "tag", "-l"]).count("\n") + 1)


def agreement(repo: Path, env: dict[str, str], mlopskit: str, gto: str) -> bool:
    ours = json.loads(c.run([mlopskit, "model", "list", "--json"], cwd=repo, env=env).stdout)
    theirs = json.loads(c.run([gto, "show", "--json"], cwd=repo, env=env).stdout)
    mine = {r["artifact"]: r for r in ours if not r["deprecated"]}
    ok = set(mine) == set(theirs)
    for name, d in sorted(theirs.items()):
        stages = {s: v for s, v in d["stage"].items() if v is not None}
        row = mine.get(name, {})
        same = row.get("latest") == d["version"] and row.get("stages") == stages
        ok = ok and same
        print(f"  {name}: latest {d['version']}, stages {stages}: {'OK' if same else 'MISMATCH'}")
    return ok


def main() -> int:
    args = c.parser(__doc__ or "", default_runs=5).parse_args()
    runs = 1 if args.quick else args.runs
    tags = 150 if args.quick else 1500
    with c.Sandbox("p9", keep=args.keep) as box:
        info = c.machine_info(box.env, box.root)
        c.print_header(f"P9 mlopskit model list vs gto show, {tags} tags ({runs} runs)", info)
        repo = box.path("registry")
        count = build(repo, tags, box.env)
        print(f"{count} tags", file=sys.stderr)
        mlopskit, gto, python = box.which("mlopskit"), box.which("gto"), box.which("python")
        comp = c.Comparison(
            "model list",
            TARGET,
            c.commands(
                "mlopskit model list --json",
                [[mlopskit, "model", "list", "--json"]],
                cwd=repo,
                env=box.env,
            ),
            c.commands("gto show --json", [[gto, "show", "--json"]], cwd=repo, env=box.env),
        )
        api = c.Comparison(
            "gto.api",
            TARGET,
            c.commands(
                "python -c 'gto.api.show(.)'", [[python, "-c", API, "."]], cwd=repo, env=box.env
            ),
            c.commands("gto show --json", [[gto, "show", "--json"]], cwd=repo, env=box.env),
            note="for information: GTO's own API against the same target, which it cannot meet",
        )
        c.interleave(comp, runs, warmup=1)
        c.interleave(api, 1 if args.quick else 2, warmup=0)
        print()
        c.print_table([comp, api])
        print()
        agree = agreement(repo, box.env, mlopskit, gto)
        c.dump_json(args.json, "P9", info, [comp, api])
    return 0 if agree and comp.passed else 1


if __name__ == "__main__":
    sys.exit(main())
