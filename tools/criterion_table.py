"""Prints criterion's estimates as a Markdown table, in bench order.

    criterion_table.py ROOT core      the ungrouped benches (ROOT/*/new/)
    criterion_table.py ROOT summary   the benches of group "summary" (ROOT/summary/*/new/)
"""
import json
import pathlib
import sys

ORDER = ["pure core per event", "stage: parse", "stage: record", "stage: ledger", "stage: serde_dynamo",
         "stage: write request", "stage: EMF", "describe", "Mann-Whitney", "bootstrap", "fold"]
root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
group = sys.argv[2] if len(sys.argv) > 2 else "core"
pattern = "*/new/benchmark.json" if group == "core" else f"{group}/*/new/benchmark.json"


def duration(nanos):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if nanos >= scale:
            return f"{nanos / scale:.2f} {unit}"
    return f"{nanos:.0f} ns"


rows = []
for bench in root.glob(pattern):
    info = json.loads(bench.read_text())
    title = info["title"].split("/", 1)[1] if group != "core" else info["title"]
    mean = json.loads((bench.parent / "estimates.json").read_text())["mean"]
    rank = next((i for i, prefix in enumerate(ORDER) if title.startswith(prefix)), len(ORDER))
    rows.append((rank, title, mean))
print("| benchmark | mean | 95% confidence interval |")
print("|---|---:|---:|")
for _, title, mean in sorted(rows):
    low, high = mean["confidence_interval"]["lower_bound"], mean["confidence_interval"]["upper_bound"]
    print(f"| {title} | {duration(mean['point_estimate'])} | {duration(low)} to {duration(high)} |")
