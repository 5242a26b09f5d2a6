"""Applies `lifecycle-etl ddl --dialect duckdb` output (argv[1]) in an in-memory DuckDB and prints,
per view of schema `marts`, its row count, column types and column comments as JSON."""
import json
import sys

import duckdb

con = duckdb.connect()
con.execute(open(sys.argv[1]).read())
out = {}
views = con.execute("select view_name from duckdb_views() where schema_name = 'marts'").fetchall()
for (name,) in views:
    types = con.execute(f'describe marts."{name}"').fetchall()
    rows = con.execute(f'select count(*) from marts."{name}"').fetchone()[0]
    comments = con.execute(
        "select count(*) from duckdb_columns() where schema_name = 'marts' and table_name = ? and comment is not null",
        [name],
    ).fetchone()[0]
    out[name] = {"rows": rows, "types": [[t[0], t[1]] for t in types], "comments": comments}
print(json.dumps(out))
