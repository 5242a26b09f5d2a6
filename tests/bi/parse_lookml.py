"""Parses every LookML file under argv[1] with the `lkml` package (a syntax error fails) and prints
JSON: each view's field names (dimensions, dimension groups, measures) and each explore's joins."""
import json
import pathlib
import sys

import lkml

out = {"views": {}, "explores": {}}
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.lkml")):
    parsed = lkml.load(path.read_text())
    for view in parsed.get("views", []):
        fields = [f["name"] for kind in ("dimensions", "dimension_groups", "measures") for f in view.get(kind, [])]
        out["views"][view["name"]] = fields
    for explore in parsed.get("explores", []):
        out["explores"][explore["name"]] = [j["name"] for j in explore.get("joins", [])]
print(json.dumps(out))
