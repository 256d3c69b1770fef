#!/usr/bin/env python3
"""Summarise `test-backend-ops support --output csv` as a Markdown table: for every op with at least one
supported case, supported/total cases per type (the op's first type parameter, e.g. type, type_a or type_src;
type_b/type_dst are appended as 'a x b')."""
import collections
import csv
import re
import sys

rows = list(csv.DictReader(open(sys.argv[1])))
table = collections.defaultdict(lambda: collections.defaultdict(lambda: [0, 0]))
for r in rows:
    params = dict(re.findall(r"(\w+)=([^,\]\[]+)", r["op_params"]))
    ty = params.get("type") or params.get("type_a") or params.get("type_src") or "-"
    second = params.get("type_b") or params.get("type_dst")
    key = f"{ty} x {second}" if second else ty
    cell = table[r["op_name"]][key]
    cell[1] += 1
    cell[0] += r["supported"] == "1"
ops = sorted(op for op, cells in table.items() if any(s for s, _ in cells.values()))
print("| op | supported / cases, by type |")
print("| --- | --- |")
for op in ops:
    cells = table[op]
    parts = [f"{k}: {s}/{n}" for k, (s, n) in sorted(cells.items()) if s]
    unsupported = sum(n for s, n in cells.values() if not s)
    if unsupported:
        parts.append(f"other types: 0/{unsupported}")
    print(f"| {op} | {', '.join(parts)} |")
total = len(rows)
sup = sum(r["supported"] == "1" for r in rows)
print(f"\n{sup} of {total} test-backend-ops cases supported, over {len(ops)} ops.")
