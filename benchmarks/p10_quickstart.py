"""P10: the quickstart. ``mlopskit quickstart DIR`` vs the plain scripted equivalent;
target: mlopskit's median <= 15 s (on 2 cores). The ratio is printed for information.

The plain side starts, untimed, from a directory holding the same project files (what
``mlopskit init`` renders, taken from the first commit of a quickstart project made
once beforehand), the data set and its schema, then runs

    git init -b main && dvc init && dvc remote add --local -d local DIR &&
    dvc add data/raw/data.csv && dvc repro && dvc push && git add -A && git commit

so it gets for free what mlopskit does on top: rendering the template and the
workflows, writing the data set, inferring its schema and four commits instead of one.
Before every run (untimed) both sides' previous project and remote are deleted.

    python benchmarks/p10_quickstart.py [--runs N] [--quick] [--json FILE]
"""

from __future__ import annotations

import io
import shutil
import sys
import tarfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

LIMIT = 15.0
DATA = "data/raw/data.csv"
SCHEMA = "data/schema.yaml"


def template_files(box: c.Sandbox, made: Path, dest: Path) -> None:
    """The files of ``made``'s first commit (what init rendered) without DVC's own,
    plus the data set and its schema."""
    first = c.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=made, env=box.env)
    tar = c.run(["git", "archive", first.stdout.decode().strip()], cwd=made, env=box.env).stdout
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        archive.extractall(dest, filter="data")
    shutil.rmtree(dest / ".dvc")
    (dest / ".dvcignore").unlink(missing_ok=True)
    (dest / DATA).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(made / DATA, dest / DATA)
    shutil.copyfile(made / SCHEMA, dest / SCHEMA)


def check_pushed(box: c.Sandbox, project: Path, dvc: str) -> None:
    dirty = c.run(["git", "status", "--porcelain"], cwd=project, env=box.env).stdout.decode()
    status = c.run([dvc, "status", "-c"], cwd=project, env=box.env).stdout.decode()
    if dirty.strip() or "are in sync" not in status:
        raise SystemExit(f"{project}: not committed and pushed:\n{dirty}\n{status}")


def main() -> int:
    args = c.parser(__doc__ or "", default_runs=5).parse_args()
    runs = min(args.runs, 1) if args.quick else args.runs
    with c.Sandbox("p10", keep=args.keep) as box:
        info = c.machine_info(box.env, box.root)
        c.print_header(f"P10 mlopskit quickstart vs git/dvc scripted ({runs} runs each)", info)
        mlopskit, dvc = box.which("mlopskit"), box.which("dvc")
        print("making the project files once ...", file=sys.stderr, flush=True)
        made = c.quickstart_project(box.path("made"), box.env)
        seed = box.path("seed")
        template_files(box, made, seed)
        remotes = Path(box.env["XDG_DATA_HOME"]) / "mlopskit" / "remotes"
        ours_dir, plain_dir, plain_remote = box.path("ours"), box.path("plain"), box.path("remote")

        def prepare_ours() -> None:
            shutil.rmtree(ours_dir, ignore_errors=True)
            shutil.rmtree(remotes, ignore_errors=True)
            ours_dir.mkdir()

        def prepare_plain() -> None:
            shutil.rmtree(plain_dir / "demo", ignore_errors=True)
            shutil.rmtree(plain_remote, ignore_errors=True)
            plain_dir.mkdir(exist_ok=True)
            shutil.copytree(seed, plain_dir / "demo")

        plain = [
            ["git", "init", "-q", "-b", "main"],
            [dvc, "init", "-q"],
            [dvc, "remote", "add", "--local", "-d", "local", str(plain_remote)],
            [dvc, "add", "-q", DATA],
            [dvc, "repro", "-q"],
            [dvc, "push", "-q"],
            ["git", "add", "-A"],
            ["git", "commit", "-q", "-m", "quickstart"],
        ]
        comp = c.Comparison(
            "quickstart",
            float("nan"),
            c.commands(
                "mlopskit quickstart demo",
                [[mlopskit, "quickstart", "demo"]],
                cwd=ours_dir,
                env=box.env,
                prepare=prepare_ours,
            ),
            c.Side(
                "git init + dvc init/add/repro/push + git commit",
                lambda: c.timed(plain, cwd=plain_dir / "demo", env=box.env),
                prepare_plain,
            ),
            note="the plain side starts with the rendered files, the data set and its schema",
            limit=LIMIT,
        )
        c.interleave(comp, runs, warmup=1)
        check_pushed(box, ours_dir / "demo", dvc)
        check_pushed(box, plain_dir / "demo", dvc)
        print()
        c.print_table([comp])
        c.dump_json(args.json, "P10", info, [comp])
    return 0 if comp.passed else 1


if __name__ == "__main__":
    sys.exit(main())
