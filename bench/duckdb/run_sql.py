#!/usr/bin/env python3
"""Runs the repository's SQL models on DuckDB over the Parquet the transform reads.

The comparison side of `cargo bench --bench transform_scale`; needs the `duckdb` package
(`pip install duckdb`). Over a job's storage folder (file:// storage) it:

1. registers every raw stream as `raw_<source>__<stream>` from the files the run commits in
   `_runs/*/commits/*.json` name (as `transform::register_raw` does), the seeds from
   `jobs/defaults/seeds/` as text tables (empty fields NULL, the reporting timezone and currency
   appended to `cfg_settings` like `seeds::load`), and `prev_<model>` as empty tables (a full
   rebuild);
2. reads the Rust models' outputs (`model::RUST_MODELS`: identity, CLV) from the DataFusion run's
   `_current.json` pointers, as precomputed inputs: they are not timed;
3. runs each SQL model file of `src/transform/models/<layer>/` in build order (layers as
   `model::LAYERS`, within a layer after the models it names, ties by name), translated from
   DataFusion's dialect by `translate()` below, as `COPY (<sql>) TO '<work>/<model>.parquet'
   (zstd)` and a view over that file (a mart whose contract names `partition_by` is sorted by
   that column and its primary key and written as one Hive partition a value, as publish.rs
   does), then the contract checks DataFusion runs (not-null, accepted values, primary-key
   uniqueness from `schemas/`); the three steps are the model's time.

A model that fails to translate or run is listed in `excluded` with DuckDB's message; the models
after it that read it fail the same way. Writes a JSON summary to --out.
"""

import argparse
import csv
import glob
import json
import os
import re
import resource
import shutil
import sys
import time

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The model set, as src/transform/model.rs builds it.


def model_rs():
    with open(os.path.join(REPO, "src/transform/model.rs")) as f:
        return f.read()


def layers(src):
    m = re.search(r"pub const LAYERS: \[&str; \d+\] = \[([^\]]*)\]", src)
    return re.findall(r'"(\w+)"', m.group(1))


def rust_models(src):
    m = re.search(r"pub const RUST_MODELS[^=]*=\s*&\[(.*?)\n\];", src, re.S)
    return re.findall(r'\(\s*"(\w+)",\s*"(\w+)",\s*super::rust', m.group(1))


def strip_comments_and_strings(sql):
    """SQL without comments or '...' literals, like model.rs without_comments_and_strings."""
    out, i, n = [], 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        elif c == "'":
            j = sql.find("'", i + 1)
            i = n if j < 0 else j + 1
            out.append(" ")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def all_models(models_dir, layer_names, rust):
    found = []
    for path in sorted(glob.glob(os.path.join(models_dir, "**", "*.sql"), recursive=True)):
        layer = os.path.relpath(path, models_dir).split(os.sep)[0]
        if layer not in layer_names:
            continue
        with open(path) as f:
            found.append({"name": os.path.splitext(os.path.basename(path))[0], "layer": layer, "sql": f.read()})
    for layer, name in rust:
        found.append({"name": name, "layer": layer, "sql": None})
    out = []
    for layer in layer_names:
        pending = {m["name"]: m for m in found if m["layer"] == layer}
        for m in pending.values():
            if m["sql"] is None:
                m["deps"] = set()  # Rust models are inputs here: read whole from DataFusion's run
            else:
                words = set(re.split(r"[^A-Za-z0-9_]+", strip_comments_and_strings(m["sql"])))
                m["deps"] = {d for d in pending if d != m["name"] and d in words}
        while pending:
            ready = sorted(n for n, m in pending.items() if not (m["deps"] & pending.keys()))
            if not ready:
                raise SystemExit("models read each other in a cycle: " + ", ".join(sorted(pending)))
            out.append(pending.pop(ready[0]))
    return out


def model_dir(layer, name):
    if layer == "marts":
        return f"marts/{name}"
    if layer == "staging":
        return f"staging/{name}"
    return f"{layer}/{name}"


# ---------------------------------------------------------------------------------------------
# DataFusion dialect -> DuckDB: a few rewrites of calls, the rest by macros (see MACROS).

ARROW_TYPES = {
    "Int32": "INTEGER",
    "Int64": "BIGINT",
    "Utf8": "VARCHAR",
    "LargeUtf8": "VARCHAR",
    "Float64": "DOUBLE",
    "Boolean": "BOOLEAN",
    "Date32": "DATE",
    'Timestamp(Microsecond, Some("UTC"))': "TIMESTAMPTZ",
    "Decimal128(18, 4)": "DECIMAL(18,4)",
}


def without_comments(sql):
    """Drops -- and /* */ comments, keeping '...' literals."""
    out, i, n = [], 0, len(sql)
    while i < n:
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        elif sql[i] == "'":
            j = i + 1
            while j < n:
                if sql[j] == "'" and sql.startswith("''", j):
                    j += 2
                elif sql[j] == "'":
                    break
                else:
                    j += 1
            out.append(sql[i : j + 1])
            i = j + 1
        else:
            out.append(sql[i])
            i += 1
    return "".join(out)


def call_end(sql, open_paren):
    """Index of the ')' closing the '(' at open_paren, and the top-level argument spans."""
    depth, i, start, args = 0, open_paren, open_paren + 1, []
    while i < len(sql):
        c = sql[i]
        if c == "'":
            i = sql.find("'", i + 1)
            while sql.startswith("''", i):
                i = sql.find("'", i + 2)
        elif c == "(" or c == "[":
            depth += 1
        elif c == ")" or c == "]":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i])
                return i, args
        elif c == "," and depth == 1:
            args.append(sql[start:i])
            start = i + 1
        i += 1
    raise ValueError("unbalanced parentheses")


def rewrite_calls(sql, name, fn):
    """Replaces each call name(args) by fn(args) (innermost calls inside args first)."""
    pattern = re.compile(r"(?<![A-Za-z0-9_.])" + name + r"\s*\(", re.I)
    pos = 0
    while True:
        m = pattern.search(sql, pos)
        if not m:
            return sql
        end, args = call_end(sql, m.end() - 1)
        args = [rewrite_calls(a, name, fn).strip() for a in args]
        new = fn(args)
        if new is None:
            new = sql[m.start() : m.end()] + ", ".join(args) + ")"
        sql = sql[: m.start()] + new + sql[end + 1 :]
        pos = m.start() + len(new)


def arrow_cast(args):
    t = args[1].strip("'")
    if t == "Int32":
        # Every model casts a Date32 to Int32 (days since 1970-01-01); DuckDB cannot cast a date to
        # an integer (and its date - interval is a timestamp, cast back to a date first).
        return f"CAST(CAST({args[0]} AS DATE) - DATE '1970-01-01' AS INTEGER)"
    if t == "Int64":
        # Every model casts a microsecond timestamp to Int64 (microseconds since the epoch).
        return f"epoch_us({args[0]})"
    if t not in ARROW_TYPES:
        raise ValueError(f"arrow_cast to {t}")
    return f"CAST({args[0]} AS {ARROW_TYPES[t]})"


def encode(args):
    # DataFusion's sha256 returns bytes, encoded to hex; DuckDB's sha256 returns the hex text.
    if args[1].lower() == "'hex'" and re.match(r"sha256\s*\(", args[0], re.I):
        return args[0]
    return None


def translate(sql):
    sql = without_comments(sql).strip().rstrip(";")
    sql = rewrite_calls(sql, "arrow_cast", arrow_cast)
    sql = rewrite_calls(sql, "encode", encode)
    sql = rewrite_calls(sql, "date_bin", lambda a: "time_bucket(" + ", ".join(a) + ")")
    # An instant literal: DataFusion's `timestamp '...Z'` is UTC; DuckDB's would be naive.
    sql = re.sub(r"(?i)\btimestamp\s+'([^']*Z)'", r"TIMESTAMPTZ '\1'", sql)
    # A VALUES list's columns: DataFusion names them column1, column2..., DuckDB col0, col1...
    sql = re.sub(r"\bcolumn([1-9][0-9]*)\b", lambda m: f"col{int(m.group(1)) - 1}", sql)
    return sql


# Functions DataFusion has (built in, or the project's UDFs in src/transform/udf/) and DuckDB
# does not, as DuckDB macros. JSON pointers ('/a/0/b') are DuckDB JSON paths as they are.
MACROS = [
    "CREATE MACRO json_get(j, p) AS json_extract_string(j, p)",
    "CREATE MACRO json_get_int(j, p) AS CAST(json_extract_string(j, p) AS BIGINT)",
    "CREATE MACRO json_get_decimal(j, p) AS CAST(json_extract_string(j, p) AS DECIMAL(18,4))",
    "CREATE MACRO json_get_timestamp(j, p) AS CAST(json_extract_string(j, p) AS TIMESTAMPTZ)",
    # The array at the pointer, or a GraphQL connection's nodes / edges[].node.
    """CREATE MACRO json_items_(x) AS CASE
        WHEN json_type(x) = 'ARRAY' THEN json_extract(x, '$[*]')
        WHEN json_type(x, '$.nodes') = 'ARRAY' THEN json_extract(x, '$.nodes[*]')
        WHEN json_type(x, '$.edges') = 'ARRAY' THEN json_extract(x, '$.edges[*].node')
    END""",
    """CREATE MACRO json_array_items(j, p) AS list_transform(
        json_items_(json_extract(j, p)),
        lambda v, i: {'position': CAST(i - 1 AS BIGINT), 'value': CAST(v AS VARCHAR)})""",
    "CREATE MACRO local_date(ts, tz) AS CAST(timezone(tz, ts) AS DATE)",
    "CREATE MACRO local_hour_of_week(ts, tz) AS "
    "CAST((isodow(timezone(tz, ts)) - 1) * 24 + hour(timezone(tz, ts)) AS INTEGER)",
    "CREATE MACRO regexp_like(s, p) AS regexp_matches(s, p)",
    "CREATE MACRO regexp_match(s, p) AS CASE WHEN regexp_matches(s, p) THEN [regexp_extract(s, p, 1)] END",
    "CREATE MACRO to_char(d, f) AS strftime(d, f)",
]
OPTIONAL_MACROS = {
    "array_element": "CREATE MACRO array_element(l, i) AS list_extract(l, i)",
    "string_to_array": "CREATE MACRO string_to_array(s, d) AS string_split(s, d)",
    "array_to_string": "CREATE MACRO array_to_string(l, d) AS array_to_string(l, d)",
}


# ---------------------------------------------------------------------------------------------
# Inputs.


def read_commits(data):
    files = {}
    for path in sorted(glob.glob(os.path.join(data, "_runs", "*", "commits", "*.json"))):
        with open(path) as f:
            c = json.load(f)
        files.setdefault((c["source"], c["stream"]), []).extend(os.path.join(data, x["path"]) for x in c["files"])
    return files


def sql_list(paths):
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def register_seeds(con, seeds_dir, timezone, currency):
    for path in sorted(glob.glob(os.path.join(seeds_dir, "*.csv"))):
        name = os.path.splitext(os.path.basename(path))[0]
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        header, rows = rows[0], [r for r in rows[1:] if r]
        if name == "cfg_settings":
            k, v = header.index("key"), header.index("value")
            for key, value in (("reporting_tz", timezone), ("reporting_currency", currency)):
                if not any(r[k] == key for r in rows):
                    row = [""] * len(header)
                    row[k], row[v] = key, value
                    rows.append(row)
        cols = ", ".join(f'"{h}" VARCHAR' for h in header)
        con.execute(f"CREATE TABLE {name} ({cols})")
        if rows:
            marks = ", ".join("?" for _ in header)
            con.executemany(
                f"INSERT INTO {name} VALUES ({marks})", [[x if x != "" else None for x in r] for r in rows]
            )


def contract(layer, name):
    """(primary key, not-null columns, {column: accepted values}, partition column) from
    schemas/<layer>/<name>.yml."""
    path = os.path.join(REPO, "schemas", layer, f"{name}.yml")
    if not os.path.exists(path):
        return [], [], {}, None
    pk, not_null, accepted, partition_by = [], [], {}, None
    with open(path) as f:
        for line in f:
            m = re.match(r"partition_by:\s*([A-Za-z0-9_]+)", line)
            if m:
                partition_by = m.group(1)
            m = re.match(r"primary_key:\s*\[(.*)\]", line)
            if m:
                pk = [x.strip() for x in m.group(1).split(",") if x.strip()]
            m = re.match(r"\s*- \{name:\s*([A-Za-z0-9_]+)", line)
            if m:
                col = m.group(1)
                if re.search(r"nullable:\s*false", line):
                    not_null.append(col)
                a = re.search(r"accepted_values:\s*\[([^\]]*)\]", line)
                if a:
                    accepted[col] = [x.strip().strip("'\"") for x in a.group(1).split(",")]
    return pk, not_null, accepted, partition_by


def check_contract(con, table, layer):
    pk, not_null, accepted, _ = contract(layer, table)
    q = lambda s: '"' + s.replace('"', '""') + '"'
    for col in not_null:
        con.execute(f"select count(*) from {table} where {q(col)} is null").fetchone()
    for col, values in accepted.items():
        vals = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
        con.execute(f"select count(*) from {table} where {q(col)} is not null and {q(col)} not in ({vals})").fetchone()
    if pk:
        key = ", ".join(q(k) for k in pk)
        con.execute(f"select count(*) from (select {key} from {table} group by {key} having count(*) > 1)").fetchone()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the job's storage folder (file:// storage)")
    ap.add_argument("--work", required=True, help="folder for DuckDB's model Parquet files (emptied)")
    ap.add_argument("--out", required=True, help="JSON summary")
    ap.add_argument("--timezone", default="America/New_York", help="the job's reporting_timezone")
    ap.add_argument("--currency", default="USD", help="the job's reporting_currency")
    ap.add_argument("--threads", type=int, default=0, help="DuckDB threads (default: all cores)")
    ap.add_argument("--no-checks", action="store_true", help="skip the contract checks")
    args = ap.parse_args()

    started = time.monotonic()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    con = duckdb.connect(":memory:", config={"temp_directory": os.path.join(args.work, "spill")})
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET integer_division = true")  # DataFusion: int / int is an integer
    if args.threads:
        con.execute(f"SET threads = {args.threads}")
    for m in MACROS:
        con.execute(m)
    for name, sql in OPTIONAL_MACROS.items():
        if not con.execute("select count(*) from duckdb_functions() where function_name = ?", [name]).fetchone()[0]:
            con.execute(sql)

    # Raw streams from the run commits.
    for (source, stream), files in sorted(read_commits(args.data).items()):
        con.execute(f"CREATE VIEW raw_{source}__{stream} AS SELECT * FROM read_parquet({sql_list(files)})")
    register_seeds(con, os.path.join(REPO, "jobs", "defaults", "seeds"), args.timezone, args.currency)

    src = model_rs()
    layer_names = layers(src)
    rust = rust_models(src)
    models = all_models(os.path.join(REPO, "src", "transform", "models"), layer_names, rust)
    # prev_<model>: empty (a full rebuild). Their columns are the Rust models' own (the only readers).
    for layer, name in rust:
        ptr = os.path.join(args.data, model_dir(layer, name), "_current.json")
        if not os.path.exists(ptr):
            log(f"run_sql: no DataFusion output for the Rust model {name}: the models reading it fail")
            continue
        with open(ptr) as f:
            files = [os.path.join(args.data, x) for x in json.load(f)["files"]]
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({sql_list(files)})")
        con.execute(f"CREATE TABLE prev_{name} AS SELECT * FROM {name} LIMIT 0")
    for m in models:
        if m["sql"] is not None:
            con.execute(f"CREATE TABLE prev_{m['name']} (_empty INTEGER)")
    registered = time.monotonic() - started
    log(f"run_sql: registered raw, seeds and Rust outputs in {registered:.1f} s")

    results, excluded = [], []
    for m in models:
        if m["sql"] is None:
            continue
        name = m["name"]
        try:
            sql = translate(m["sql"])
        except ValueError as e:
            excluded.append({"name": name, "reason": f"translation: {e}"})
            continue
        pk, _, _, partition_by = contract(m["layer"], name)
        t0 = time.monotonic()
        try:
            if partition_by and m["layer"] == "marts":
                # As publish.rs writes marts: sorted by the partition column, then the primary key,
                # one Hive partition (folder) per value of the period column.
                path = os.path.join(args.work, name)
                order = ", ".join([partition_by] + pk)
                con.execute(
                    f"COPY (SELECT * FROM ({sql}) ORDER BY {order}) TO '{path}' (FORMAT parquet, "
                    f"COMPRESSION zstd, PARTITION_BY ({partition_by}), WRITE_PARTITION_COLUMNS true)"
                )
                source = f"read_parquet('{path}/**/*.parquet', hive_partitioning = false)"
            else:
                path = os.path.join(args.work, f"{name}.parquet")
                con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet, COMPRESSION zstd)")
                source = f"read_parquet('{path}')"
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM {source}")
            if not args.no_checks:
                check_contract(con, name, m["layer"])
        except duckdb.Error as e:
            excluded.append({"name": name, "reason": str(e).splitlines()[0][:300]})
            log(f"run_sql: {name}: {e}")
            continue
        secs = time.monotonic() - t0
        rows = con.execute(f"select count(*) from {source}").fetchone()[0]
        results.append({"name": name, "layer": m["layer"], "seconds": secs, "rows": rows})
        log(f"run_sql: {name} {rows} rows {secs:.2f} s")

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    summary = {
        "version": duckdb.__version__,
        "threads": con.execute("select current_setting('threads')").fetchone()[0],
        "register_seconds": registered,
        "total_seconds": time.monotonic() - started,
        "maxrss_bytes": maxrss,
        "models": results,
        "excluded": excluded,
        "rust_inputs": [name for _, name in rust],
    }
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
