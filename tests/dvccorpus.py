"""A corpus of DVC project shapes, written here (not copied from any repository), for the
differential tests: DVC is the oracle for what mlopskit reads at every commit.

One git history covers each feature alone and together: ``vars`` (a file and inline),
``foreach`` over a list, ``matrix``, ``${...}`` in paths and commands, top-level
``metrics:``/``params:``/``plots:``, a vars file that is not a params file, a
``.dvcignore``d folder with its own dvc.yaml, a nested dvc.yaml without templating,
params in YAML (with YAML 1.2 numbers), TOML, JSON and Python, metrics kept in the DVC
cache (``cache: false`` ones in git), a directory output of plots (DVCLive's layout), a
``.dvc`` file, and nested ``dvc.yaml`` files (one with a ``foreach`` stage whose outputs
are cached data).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

GEN = r"""
import json, os, sys, tomllib

def load_yaml(path):
    import yaml
    with open(path) as f:
        return yaml.safe_load(f)

kind, out = sys.argv[1], sys.argv[2]
args = sys.argv[3:]
os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
raw = open("data/raw.csv").read() if os.path.exists("data/raw.csv") else ""
rows = len(raw.splitlines())
if kind == "train":
    seed = float(args[0])
    score = round(0.5 + seed / 100 + len(args[1]) / 1000 + rows / 10000, 6)
    json.dump({"score": score, "loss": {"train": round(1 - score, 6)}, "name": args[1],
               "tags": [1, 2], "none": None}, open(out, "w"))
elif kind == "eval":
    val = round(float(args[0]) * 0.1 + int(args[1]) + rows / 1000, 6)
    open(out, "w").write(f"split: {args[0]}\nk: {args[1]}\nvalue: {val}\n")
elif kind == "plots":
    os.makedirs(out, exist_ok=True)
    for name in ("acc", "loss"):
        with open(os.path.join(out, name + ".tsv"), "w") as f:
            f.write("step\t" + name + "\n")
            for i in range(3):
                f.write(f"{i}\t{round(float(args[0]) * (i + 1), 4)}\n")
elif kind == "summary":
    cfg = tomllib.load(open("config.toml", "rb"))
    json.dump({"rows": rows, "threshold": cfg["gate"]["threshold"]}, open(out, "w"))
else:
    open(out, "w").write(" ".join(args) + "\n")
"""

PY = sys.executable


def _run(cwd: Path, *args: str) -> str:
    res = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed: {res.stdout}\n{res.stderr}")
    return res.stdout


def git(cwd: Path, *args: str) -> str:
    return _run(cwd, "git", *args)


def dvc(cwd: Path, *args: str) -> str:
    return _run(cwd, PY, "-m", "dvc", *args)


def write(root: Path, rel: str, text: str) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def dvc_yaml(train_items: list[str], *, extra_stage: str | None = None) -> str:
    items = "\n".join(f"      - {i}" for i in train_items)
    text = f"""\
vars:
  - config.json
  - names.yaml
  - inline:
      out: results
stages:
  prep:
    cmd: python gen.py prep ${{inline.out}}/prep.txt ${{model.depth}} ${{names.tag}}
    deps:
      - gen.py
      - data/raw.csv
    params:
      - model.depth
    outs:
      - ${{inline.out}}/prep.txt
  train:
    foreach:
{items}
    do:
      cmd: python gen.py train ${{inline.out}}/train-${{item}}.json ${{seed}} ${{item}}
      deps:
        - gen.py
        - ${{inline.out}}/prep.txt
      params:
        - seed
        - lr
        - hp.py:
            - BATCH
      metrics:
        - ${{inline.out}}/train-${{item}}.json:
            cache: false
  eval:
    matrix:
      split: [1, 2]
      k: [3, 4]
    cmd: >-
      python gen.py eval ${{inline.out}}/eval-${{item.split}}-${{item.k}}.yaml
      ${{item.split}} ${{item.k}}
    deps:
      - gen.py
      - ${{inline.out}}/prep.txt
    params:
      - config.json:
          - report.digits
    metrics:
      - ${{inline.out}}/eval-${{item.split}}-${{item.k}}.yaml
  live:
    cmd: python gen.py plots dvclive/plots/metrics ${{lr}}
    deps:
      - gen.py
    params:
      - lr
    outs:
      - dvclive/plots/metrics
  summary:
    cmd: python gen.py summary summary.json
    deps:
      - gen.py
      - config.toml
      - data/raw.csv
    outs:
      - summary.json:
          cache: false
"""
    if extra_stage:
        text += f"""\
  {extra_stage}:
    cmd: python gen.py other notes/{extra_stage}.txt done
    deps:
      - summary.json
    outs:
      - notes/{extra_stage}.txt
"""
    text += """\
metrics:
  - summary.json
params:
  - config.toml
plots:
  - dvclive/plots/metrics:
      x: step
  - loss_curve:
      x: step
      y:
        dvclive/plots/metrics/loss.tsv: loss
artifacts:
  prep:
    path: results/prep.txt
    type: model
"""
    return text


SUB = """\
stages:
  fit:
    cmd: python ../gen.py train out/fit.json ${seed} sub
    deps:
      - ../gen.py
    params:
      - seed
      - local.json:
    metrics:
      - out/fit.json
  shard:
    foreach: [x, y]
    do:
      cmd: python ../gen.py other out/shard-${item}.txt ${item} ${seed}
      deps:
        - ../gen.py
      params:
        - seed
      outs:
        - out/shard-${item}.txt
metrics:
  - extra.yaml
artifacts:
  shard:
    path: out/shard-x.txt
    type: model
    desc: a model declared in a nested dvc.yaml
"""


PLAIN = """\
stages:
  count:
    cmd: python ../gen.py train score.json 5 plain
    deps:
      - ../gen.py
    params:
      - knobs.yaml:
          - depth
    metrics:
      - score.json:
          cache: false
metrics:
  - extra.json
params:
  - knobs.yaml
plots:
  - curve.csv:
      x: x
      y: y
"""


def build(root: Path) -> list[tuple[str, str]]:
    """The corpus history in ``root`` (git + DVC initialised here): (sha, what) pairs."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    dvc(root, "init", "-q")
    write(root, "gen.py", GEN)
    write(root, "params.yaml", "seed: 1\nlr: 1e-3\nmodel:\n  depth: 3\n  width: 010\n")
    write(root, "config.json", json.dumps({"report": {"digits": 3, "style": "plain"}}))
    write(root, "config.toml", "[gate]\nthreshold = 0.5\n")
    write(root, "hp.py", "BATCH = 32\nUNUSED = 'x'\n")
    write(root, "names.yaml", "names:\n  tag: v1\n  unused: 2\n")
    write(root, "data/raw.csv", "a,b\n1,2\n")
    write(root, ".gitignore", "")
    dvc(root, "add", "-q", "data/raw.csv")
    write(root, "dvc.yaml", dvc_yaml(["a", "b"]))
    shas: list[tuple[str, str]] = []

    def commit(what: str) -> None:
        dvc(root, "repro", "-q", "-P")
        git(root, "add", "-A")
        git(root, "commit", "-qm", what)
        shas.append((git(root, "rev-parse", "HEAD").strip(), what))

    commit("first pipeline")
    write(root, "params.yaml", "seed: 2\nlr: 1e-3\nmodel:\n  depth: 3\n  width: 010\n")
    commit("param change")
    write(root, "data/raw.csv", "a,b\n1,2\n3,4\n5,6\n")
    dvc(root, "add", "-q", "data/raw.csv")
    commit("data change")
    write(root, "dvc.yaml", dvc_yaml(["a", "b"], extra_stage="report"))
    commit("stage added")
    write(root, "dvc.yaml", dvc_yaml(["a", "b"], extra_stage="notes"))
    commit("stage renamed")
    write(root, "dvc.yaml", dvc_yaml(["a", "b", "cc"], extra_stage="notes"))
    commit("foreach grown")
    write(root, "sub/dvc.yaml", SUB)
    write(root, "sub/params.yaml", "seed: 7\n")
    write(root, "sub/local.json", json.dumps({"alpha": 0.25}))
    write(root, "sub/extra.yaml", "quality: 0.9\nlabel: good\n")
    # a dvc.yaml without templating (mlopskit reads it without DVC's resolver)
    write(root, "plain/dvc.yaml", PLAIN)
    write(root, "plain/extra.json", json.dumps({"static": 3}))
    write(root, "plain/knobs.yaml", "depth: 4\nrate: 2.5e-2\n")
    write(root, "plain/curve.csv", "x,y\n0,1\n1,3\n")
    # hidden from DVC by .dvcignore: neither DVC nor mlopskit may read it
    write(root, "ignored/dvc.yaml", "metrics:\n  - m.json\n")
    write(root, "ignored/m.json", '{"hidden": 1}')
    write(root, ".dvcignore", "ignored/\n")
    commit("dvc.yaml in a subfolder")
    write(root, "sub/params.yaml", "seed: 8\n")
    commit("nested param change")
    return shas
