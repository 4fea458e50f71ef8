"""Prints criterion's estimates (target/criterion/*/new/*.json) as a Markdown table, in bench order."""
import json
import pathlib
import sys

ORDER = ["pure core per event", "stage: parse", "stage: record", "stage: ledger", "stage: serde_dynamo",
         "stage: write request", "stage: EMF"]
root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")
rows = []
for bench in root.glob("*/new/benchmark.json"):
    title = json.loads(bench.read_text())["title"]
    mean = json.loads((bench.parent / "estimates.json").read_text())["mean"]
    rank = next((i for i, prefix in enumerate(ORDER) if title.startswith(prefix)), len(ORDER))
    rows.append((rank, title, mean))
print("| benchmark | mean | 95% confidence interval |")
print("|---|---:|---:|")
for _, title, mean in sorted(rows):
    low, high = mean["confidence_interval"]["lower_bound"], mean["confidence_interval"]["upper_bound"]
    print(f"| {title} | {mean['point_estimate'] / 1000:.2f} µs | {low / 1000:.2f} to {high / 1000:.2f} µs |")
