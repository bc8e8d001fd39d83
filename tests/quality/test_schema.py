"""Data schemas: inference, the YAML file, and streaming validation in bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlopskit import errors, yamlio
from mlopskit.errors import UsageError
from mlopskit.quality import schema, validation
from mlopskit.quality.schema import Column, Schema

from ..conftest import run_cli


def every_type() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6, 7, 8],
            "age": [23, 35, None, 41, 52, 35, 23, 60],
            "score": [0.5, 1.25, 3.0, 2.5, 0.1, 9.9, 4.4, 7.0],
            "active": [True, False, True, True, False, False, True, True],
            "color": ["red", "blue", "red", "green", "blue", "red", None, "red"],
            "name": ["ann", "bob", "cy", "dee", "eve", "fay", "gus", "hal"],
            "seen": [
                "2024-01-01",
                "2024-01-02T10:00:00",
                "2024-02-01",
                "2024-03-01",
                "2024-01-05",
                "2024-01-09",
                "2024-04-01",
                "2024-05-01",
            ],
        }
    )


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    every_type().to_csv(path, index=False)
    return path


def test_infer_every_type(table: Path) -> None:
    s = schema.infer(table)
    assert [c.name for c in s.columns] == list(every_type().columns)
    by = {c.name: c for c in s.columns}
    assert {n: c.type for n, c in by.items()} == {
        "id": "integer",
        "age": "integer",
        "score": "float",
        "active": "boolean",
        "color": "category",
        "name": "string",
        "seen": "datetime",
    }
    assert s.min_rows == 4 and s.max_rows is None
    assert by["id"].unique and not by["id"].nullable
    assert by["id"].min is not None and by["id"].max is not None
    assert by["id"].min <= 1 and by["id"].max >= 8
    assert by["age"].nullable and by["age"].max_null_fraction == 0.25  # twice the 1/8 seen
    assert not by["age"].unique  # 23 and 35 repeat
    assert by["score"].min is not None and by["score"].max is not None
    assert 0 <= by["score"].min <= 0.1 and 9.9 <= by["score"].max < 11
    assert by["color"].allowed == ("blue", "green", "red") and by["color"].nullable
    assert by["name"].unique and by["name"].allowed is None
    for c in s.columns:
        assert c.required
        if c.type not in ("integer", "float"):
            assert c.min is None and c.max is None
    assert validation.validate(table, s).ok


def test_infer_sample_rows_and_parquet(tmp_path: Path) -> None:
    frame = every_type()
    frame["seen"] = pd.to_datetime(frame["seen"], format="ISO8601")
    frame["color"] = frame["color"].astype("category")
    path = tmp_path / "data.parquet"
    frame.to_parquet(path)
    s = schema.infer(path)
    types = {c.name: c.type for c in s.columns}
    assert types["seen"] == "datetime" and types["color"] == "category"
    assert types["active"] == "boolean" and types["score"] == "float"
    assert validation.validate(path, s).ok
    sampled = schema.infer(path, sample_rows=3)
    assert sampled.min_rows == 1
    assert {c.name: c.type for c in sampled.columns}["id"] == "integer"


def test_boolean_with_nulls_is_boolean(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text("flag,n\ntrue,1\n,2\nfalse,3\nTrue,4\n")
    col = schema.infer(path).columns[0]
    assert col.type == "boolean" and col.nullable


def test_write_load_round_trip(table: Path, tmp_path: Path) -> None:
    s = schema.infer(table)
    out = tmp_path / "schema.yaml"
    schema.write(s, out)
    text = out.read_text()
    assert text.startswith("# Data schema") and "allowed: [blue, green, red]" in text
    assert schema.load(out) == s
    custom = Schema(
        columns=(
            Column("code", "string", allowed=("007", "1", "true"), required=False),
            Column("x", "float", nullable=True, max_null_fraction=0.5, min=-1.5, max=2),
            Column("n", "integer", min=0, max=10**12, unique=True),
        ),
        min_rows=0,
        max_rows=100,
        allow_extra_columns=True,
    )
    schema.write(custom, out)
    assert schema.load(out) == custom


VIOLATING = """\
id,qty,price,kind,flag,day,note
1,5,9.5,a,true,2024-01-01,x
2,,1.0,b,false,2024-01-02,
2,7,abc,c,yes,not-a-date,y
4,-3,250,a,maybe,2024-01-04,z
5,1.5,3.0,z,0,2024-01-05,
4,2,1e3,,no,2024-01-06,w
"""


def violating_schema(min_rows: int = 1) -> Schema:
    return Schema(
        columns=(
            Column("id", "integer", unique=True),
            Column("qty", "integer", min=0, max=100),
            Column("price", "float", min=0, max=100),
            Column("kind", "category", allowed=("a", "b", "c")),
            Column("flag", "boolean"),
            Column("day", "datetime"),
            Column("note", "string", nullable=True, max_null_fraction=0.2),
            Column("gone", "string"),
            Column("optional", "integer", required=False),
        ),
        min_rows=min_rows,
    )


def found(result: validation.ValidationResult) -> dict[tuple[str | None, str], tuple[int, ...]]:
    return {(v.column, v.rule): v.rows for v in result.violations}


def test_each_violation_with_example_rows(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    path.write_text(VIOLATING)
    result = validation.validate(path, violating_schema(min_rows=10))
    assert not result.ok and result.rows == 6
    assert found(result) == {
        ("gone", "missing_column"): (),
        ("id", "unique"): (3, 6),
        ("qty", "nullable"): (2,),
        ("qty", "type"): (5,),  # 1.5 is not an integer
        ("qty", "min"): (4,),
        ("price", "type"): (3,),
        ("price", "max"): (4, 6),
        ("kind", "nullable"): (6,),
        ("kind", "allowed"): (5,),
        ("flag", "type"): (4,),  # yes, no and 0 are booleans; maybe is not
        ("day", "type"): (3,),
        ("note", "max_null_fraction"): (2, 5),
        (None, "min_rows"): (),
    }
    v = {(v.column, v.rule): v for v in result.violations}
    assert v[("price", "max")].count == 2 and "highest 1000" in v[("price", "max")].found
    assert v[("qty", "min")].expected == ">= 0" and "lowest -3" in v[("qty", "min")].found
    assert "'z'" in v[("kind", "allowed")].found
    assert "'abc'" in v[("price", "type")].found
    assert "2 values repeated" in v[("id", "unique")].found
    assert v[("note", "max_null_fraction")].found == "2 nulls (33.33% of 6 rows)"
    assert v[(None, "min_rows")].found == "6 rows"


def test_extra_columns_and_row_bounds(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("a\tb\n1\tx\n2\ty\n3\tz\n")
    only_a = Schema(columns=(Column("a", "integer"),), min_rows=1, max_rows=2)
    assert found(validation.validate(path, only_a)) == {
        ("b", "extra_column"): (),
        (None, "max_rows"): (),
    }
    relaxed = Schema(columns=(Column("a", "integer"),), allow_extra_columns=True)
    assert validation.validate(path, relaxed).ok


def test_example_rows_capped_at_five(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("n\n" + "\n".join(str(i) for i in range(20)) + "\n")
    result = validation.validate(
        path, Schema(columns=(Column("n", "integer", max=3),)), chunksize=3
    )
    (v,) = result.violations
    assert v.rule == "max" and v.count == 16 and v.rows == (5, 6, 7, 8, 9)


@pytest.mark.parametrize("chunksize", [1, 2, 4])
def test_chunked_run_matches_one_chunk(tmp_path: Path, chunksize: int) -> None:
    path = tmp_path / "v.csv"
    path.write_text(VIOLATING)
    s = violating_schema()
    assert validation.validate(path, s, chunksize=chunksize) == validation.validate(path, s)


def test_uniqueness_across_chunks_and_types(tmp_path: Path) -> None:
    # An integer column reads as int64 in one chunk and float64 (a null) in the next;
    # 3 and 3.0 are still one value, and '007' text stays distinct from '7'.
    path = tmp_path / "u.csv"
    path.write_text("k,t\n3,007\n4,7\n,8\n3,007\n")
    s = Schema(
        columns=(
            Column("k", "integer", nullable=True, unique=True),
            Column("t", "string", unique=True),
        )
    )
    for chunksize in (1, 2, 10):
        assert found(validation.validate(path, s, chunksize=chunksize)) == {
            ("k", "unique"): (4,),
            ("t", "unique"): (4,),
        }


@pytest.mark.parametrize("kind", ["integer", "float", "string"])
def test_uniqueness_matches_pandas(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(1)
    values = pd.Series(rng.integers(-20_000, 20_000, 3000))
    if kind == "float":
        values = values / 7
    elif kind == "string":
        values = values.astype(str).radd("k")
    path = tmp_path / "u.csv"
    pd.DataFrame({"v": values}).to_csv(path, index=False)
    dups = np.flatnonzero(values.duplicated().to_numpy()) + 1
    assert 50 < dups.size < 500
    s = Schema(columns=(Column("v", kind, unique=True),))
    for chunksize in (333, 5000):
        (v,) = validation.validate(path, s, chunksize=chunksize).violations
        assert (v.rule, v.count, v.rows) == ("unique", dups.size, tuple(dups[:5]))


def test_uniqueness_gives_up_past_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_text("k\n1\n2\n3\n4\n5\n1\n")
    s = Schema(columns=(Column("k", "integer", unique=True),))
    result = validation.validate(path, s, chunksize=2, max_unique_values=3)
    assert result.ok and result.notes == (
        "k: uniqueness not checked past 3 distinct values (max_unique_values)",
    )
    assert found(validation.validate(path, s, chunksize=2)) == {("k", "unique"): (6,)}


def test_parquet_violations(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pd.DataFrame(
        {
            "id": [1, 2, 2],
            "when": pd.to_datetime(["2024-01-01", None, "2024-01-03"]),
            "kind": ["a", "b", "q"],
            "on": [True, None, False],
        }
    ).to_parquet(path)
    s = Schema(
        columns=(
            Column("id", "integer", unique=True, max=1),
            Column("when", "datetime"),
            Column("kind", "category", allowed=("a", "b")),
            Column("on", "boolean", nullable=True),
        )
    )
    for chunksize in (1, 100):
        assert found(validation.validate(path, s, chunksize=chunksize)) == {
            ("id", "unique"): (3,),
            ("id", "max"): (2, 3),
            ("when", "nullable"): (2,),
            ("kind", "allowed"): (3,),
        }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("columns: [a, b", "schema.yaml:1"),
        ("columns:\n  a: {type: integer}\nextra: 1\n", "unknown key 'extra'"),
        ("columns:\n  a: {type: integer, minimum: 0}\n", "unknown key 'columns.a.minimum'"),
        ("columns:\n  a: {type: integr}\n", "columns.a.type: unknown type 'integr'"),
        ("columns:\n  a: {nullable: true}\n", "columns.a: missing 'type'"),
        ("columns:\n  a: {type: integer, min: low}\n", "columns.a.min: expected a number"),
        ("columns:\n  a: {type: integer, nullable: 'yes'}\n", "columns.a.nullable: expected"),
        ("columns:\n  a: {type: string, min: 1}\n", "columns.a.min: only integer and float"),
        ("columns:\n  a: {type: integer, allowed: [1]}\n", "columns.a.allowed: only string"),
        ("columns:\n  a: {type: float, min: 2, max: 1}\n", "columns.a.min: 2 is above max 1"),
        ("columns:\n  a: {type: category, allowed: []}\n", "columns.a.allowed: expected a non"),
        ("columns:\n  a: {type: float, max_null_fraction: 0.1}\n", "not nullable"),
        ("rows: {min: -1}\ncolumns:\n  a: {type: float}\n", "rows.min: expected a whole"),
        ("rows: {min: 5, max: 2}\ncolumns:\n  a: {type: float}\n", "rows.max: 2 is below"),
        ("version: 2\ncolumns:\n  a: {type: float}\n", "unsupported version"),
        ("columns: {}\n", "columns: expected a mapping of column names"),
        ("rows: {min: 1}\n", "missing 'columns'"),
        ("- a\n- b\n", "expected a mapping"),
        ("", "expected a mapping"),
    ],
)
def test_broken_schema_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "schema.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        schema.load(path)
    assert str(path) in err.value.message and message in err.value.message


def test_missing_schema_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="file not found"):
        schema.load(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "file not found"),
        ("data.xlsx", b"PK\x03\x04", "unsupported file type '.xlsx'"),
        ("empty.csv", b"", "cannot read the table"),
        ("latin1.csv", "a\ncaf\xe9\n".encode("latin-1"), "not UTF-8"),
        ("ragged.csv", b"a,b\n1,2\n3,4,5\n", "cannot read the table"),
        ("fake.parquet", b"not parquet at all", "cannot read the table"),
    ],
)
def test_unreadable_data_files(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    s = Schema(columns=(Column("a", "string"),))
    with pytest.raises(UsageError, match=message) as err:
        validation.validate(path, s)
    assert str(path) in err.value.message
    with pytest.raises(UsageError):
        schema.infer(path)


def test_directory_and_bad_options(tmp_path: Path, table: Path) -> None:
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    s = schema.infer(table)
    with pytest.raises(UsageError, match="is a directory"):
        validation.validate(folder, s)
    with pytest.raises(UsageError, match="chunksize"):
        validation.validate(table, s, chunksize=0)
    with pytest.raises(UsageError, match="sample_rows"):
        schema.infer(table, sample_rows=0)
    header_only = tmp_path / "h.csv"
    header_only.write_text("a,b\n")
    with pytest.raises(UsageError, match="no data rows"):
        schema.infer(header_only)


# --- a file far larger than one chunk, in bounded memory ----------------------------

BIG_MB = 240
BLOCK = 200_000

# Linux keeps ru_maxrss across execve, so a child started by this (large) pytest process
# would report the parent's peak; VmHWM is the child's own.
MEASURE = """
import json, resource, sys, time
from pathlib import Path
import pandas as pd
from mlopskit import errors, yamlio; from mlopskit.quality import schema, validation
def peak_mb():
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) // 1024
s = schema.load(Path(sys.argv[2]))
base = peak_mb()
t = time.perf_counter()
r = validation.validate(Path(sys.argv[1]), s)
seconds = time.perf_counter() - t
print(json.dumps({
    "rows": r.rows, "violations": [[v.column, v.rule, v.rows] for v in r.violations],
    "base_mb": base, "peak_mb": peak_mb(),
    "seconds": seconds,
}))
"""


def write_big_csv(path: Path, size_mb: int) -> int:
    """A CSV of about ``size_mb`` MB with a unique id; returns the number of rows."""
    rng = np.random.default_rng(0)
    block = pd.DataFrame(
        {
            "x": np.round(rng.normal(50, 10, BLOCK), 4),
            "n": rng.integers(0, 1000, BLOCK),
            "cat": rng.choice(["alpha", "beta", "gamma", "delta"], BLOCK),
            "flag": rng.choice(["true", "false"], BLOCK),
            "name": pd.Series(rng.integers(0, 10**9, BLOCK)).astype(str).radd("user_"),
            "ts": (
                pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, BLOCK), "s")
            ).strftime("%Y-%m-%dT%H:%M:%S"),
        }
    )
    lines = block.to_csv(index=False, header=False).splitlines(keepends=True)
    rows = size = 0
    with path.open("w") as fh:
        fh.write("id,x,n,cat,flag,name,ts\n")
        while size < size_mb * 2**20:
            text = "".join(f"{rows + i},{line}" for i, line in enumerate(lines))
            fh.write(text)
            size += len(text)
            rows += BLOCK
    return rows


@pytest.mark.slow
def test_large_csv_validates_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    rows = write_big_csv(path, BIG_MB)
    size_mb = path.stat().st_size / 2**20
    s = Schema(
        columns=(
            Column("id", "integer", unique=True, min=0),
            Column("x", "float", min=-100, max=200),
            Column("n", "integer", min=0, max=998),
            Column("cat", "category", allowed=("alpha", "beta", "gamma", "delta")),
            Column("flag", "boolean"),
            Column("name", "string"),
            Column("ts", "datetime"),
        ),
        min_rows=1000,
    )
    schema_file = tmp_path / "schema.yaml"
    schema.write(s, schema_file)
    res = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), str(schema_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["rows"] == rows
    # Every block has the same n == 999 rows; only the first five are examples.
    (v,) = out["violations"]
    assert v[:2] == ["n", "max"] and len(v[2]) == 5
    # Peak memory: the interpreter with pandas (~100 MB) plus one chunk and 8 bytes per
    # distinct id for the uniqueness check (~50 + 32 MB here); plain pd.read_csv of this
    # file peaks at about three times its size.
    grown = out["peak_mb"] - out["base_mb"]
    assert out["peak_mb"] < size_mb, out  # the whole table never sits in memory
    assert grown < 0.5 * size_mb, out


def test_infer_sample_rows_reads_only_the_first_rows(tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("id,x\n" + "".join(f"{i},{i * 10}\n" for i in range(1, 11)))
    code, _, err = run_cli(
        "data", "schema", "infer", str(table), "--sample-rows", "3", "-o", str(tmp_path / "s.yaml")
    )
    assert code == 0, err
    x = yamlio.load(tmp_path / "s.yaml")["columns"]["x"]
    assert x["max"] < 40  # rows 4-10 (x = 40..100) were not read
    code, _, err = run_cli("data", "schema", "infer", str(table), "-o", str(tmp_path / "all.yaml"))
    assert yamlio.load(tmp_path / "all.yaml")["columns"]["x"]["max"] >= 100


@pytest.mark.parametrize("chunksize", ["1", "2", "100"])
def test_validate_chunksize_finds_a_duplicate_split_across_chunks(
    tmp_path: Path, chunksize: str
) -> None:
    (tmp_path / "s.yaml").write_text(
        "version: 1\ncolumns:\n  id:\n    type: integer\n    unique: true\n"
    )
    (tmp_path / "d.csv").write_text("id\n1\n2\n3\n1\n")
    code, out, err = run_cli(
        "data",
        "validate",
        str(tmp_path / "d.csv"),
        "--schema",
        str(tmp_path / "s.yaml"),
        "--chunksize",
        chunksize,
        "--json",
    )
    assert code == errors.FAILED, err
    assert "1 value repeated: 1" in out
