"""make bench: cost per million task state change events, from this run's measured figures.

Inputs: runtime_bench events (handler time, CPU and log bytes per event), roundtrips (record size,
task-rollups' time per batch), rollup_scaling (rollup item sizes at 1,000 and 1,000,000 tasks a month).
Prices: us-east-1 list prices, November 2026. A task is taken to send three events (RUNNING; RUNNING with
desiredStatus STOPPED; STOPPED); RUNNING makes 4 phases known, STOPPED 3, the middle one nothing new.

The write path is the stream's: task-events writes the record (1 unit per KB, the index copy with
projection ALL as much again); task-rollups writes each rollup item a batch touches once (1 unit per KB,
no transaction). A task's RUNNING touches its counts item and 4 phase items, its STOPPED the counts item
and 3 more, each in its hour and its day: 18 item writes if every event of the task meets no other task of
its series in its batch, and 18 / k when k tasks of the series share each batch.
"""
import math
import re
import sys

LAMBDA_REQUEST = 0.20 / 1e6
LAMBDA_GB_SECOND = {"arm64": 0.0000133334, "x86_64": 0.0000166667}
MEMORY_GB = 128 / 1024
WRITE_UNIT = 0.625 / 1e6
LOG_GB = 0.50
EVENTS = 1_000_000
TASKS = EVENTS / 3
PHASES_MADE_KNOWN = (4, 3)
BATCH_SIZE = 100  # the mapping's default StreamBatchSize
# Tasks of one series sharing a batch: 1 (a quiet family) to 33 (a batch of 100 records, 3 per task).
SHARING = (1, BATCH_SIZE // 3)


def cells(path, needle):
    for line in open(path):
        if line.startswith("|") and needle in line:
            return [cell.strip() for cell in line.strip().strip("|").split("|")]
    raise SystemExit(f"{path}: no row with {needle!r}")


def number(cell):
    return float(re.match(r"[\d.]+", cell.strip()).group())


def kb(size):
    return math.ceil(size / 1024)


events_file, roundtrips_file, rollups_file = sys.argv[1:4]
row = cells(events_file, "target/release/task-events")
handler_mean_ms, cpu_ms, log_bytes = number(row[2]), number(row[5]), number(row[7])
record_bytes = number(cells(roundtrips_file, "record size")[1].split("/")[1])  # the largest record
rollup_sizes = {}
for tasks in ("1000", "1000000"):
    notes = cells(rollups_file, f"| {tasks} | 31 whole days | rollups")[-1]
    hour, day = (number(m) for m in re.findall(r"(?:hour|day) phase items mean ([\d.]+) B", notes))
    rollup_sizes[tasks] = (hour, day)

# A record write (or a refused condition, which reads the item) costs 1 unit per KB; the index copy
# (projection ALL) as much again when the record changes.
record_write = 2 * kb(record_bytes)
units = {}
for tasks, (hour, day) in rollup_sizes.items():
    # Guard attributes (one per shard that wrote the item, about 60 B each) come on top: a few per item.
    item_writes = [(1 + phases) * (kb(hour) + kb(day)) for phases in PHASES_MADE_KNOWN]
    for sharing in SHARING:
        units[(tasks, sharing)] = 3 * record_write + sum(item_writes) / sharing
low_units, high_units = min(units.values()), max(units.values())


def money(value):
    return f"${value:,.2f}"


def lambda_duration(ms, arch):
    billed = math.ceil(ms)  # Lambda bills each invocation's duration rounded up to the millisecond
    return EVENTS * billed / 1000 * MEMORY_GB * LAMBDA_GB_SECOND[arch], billed


consumer_ms = number(cells(roundtrips_file, "50 tasks of one family-hour")[5])
consumer_invocations = EVENTS / BATCH_SIZE
consumer_billed = math.ceil(consumer_ms)
consumer = consumer_invocations * (LAMBDA_REQUEST + consumer_billed / 1000 * MEMORY_GB * LAMBDA_GB_SECOND["arm64"])
slow, slow_billed = lambda_duration(handler_mean_ms, "arm64")
fast, fast_billed = lambda_duration(cpu_ms, "arm64")
dynamodb_low, dynamodb_high = TASKS * low_units * WRITE_UNIT, TASKS * high_units * WRITE_UNIT
logs = EVENTS * log_bytes / 1e9 * LOG_GB
requests = EVENTS * LAMBDA_REQUEST
print("| item | arithmetic (figures from this run) | per million events |")
print("|---|---|---:|")
print(f"| Lambda requests | 1,000,000 × $0.20 / 1M | {money(requests)} |")
print(f"| Lambda duration, 128 MB arm64, at the handler time measured against moto (mean {handler_mean_ms:.2f} ms, billed {slow_billed} ms; an upper bound: moto answers slowly) | 1,000,000 × {slow_billed / 1000:.3f} s × 0.125 GB × $0.0000133334 | {money(slow)} |")
print(f"| Lambda duration at the CPU per event ({cpu_ms:.3f} ms, billed {fast_billed} ms; a lower bound: DynamoDB's answer time comes on top) | 1,000,000 × {fast_billed / 1000:.3f} s × 0.125 GB × $0.0000133334 | {money(fast)} |")
print(f"| task-rollups: {consumer_invocations:,.0f} batches of {BATCH_SIZE}, {consumer_ms:.1f} ms each measured against moto (billed {consumer_billed} ms; an upper bound) | 10,000 × ($0.20 / 1M + {consumer_billed / 1000:.3f} s × 0.125 GB × $0.0000133334) | {money(consumer)} |")
print(f"| DynamoDB writes, on-demand: records of {record_bytes:.0f} B = {kb(record_bytes)} KB, twice (table and index); rollup items {rollup_sizes['1000'][0]:.0f}/{rollup_sizes['1000'][1]:.0f} B (1k tasks a month) to {rollup_sizes['1000000'][0]:.0f}/{rollup_sizes['1000000'][1]:.0f} B (1M), 18 item writes per task shared by 33 to 1 tasks of the series in a batch | 333,333 tasks × {low_units:.1f} to {high_units:.1f} units × $0.625 / 1M | {money(dynamodb_low)} to {money(dynamodb_high)} |")
print(f"| CloudWatch Logs ingestion: {log_bytes:.0f} B written per event (EMF and JSON application logs) | 1,000,000 × {log_bytes:.0f} B × $0.50 / GB | {money(logs)} |")
low_total = requests + fast + consumer + dynamodb_low + logs
high_total = requests + slow + consumer + dynamodb_high + logs
print(f"| **total** (X-Ray and custom metrics not included: docs/deploy.md, What it costs) | | **{money(low_total)} to {money(high_total)}** |")
print()
print(f"Lambda is {100 * (requests + slow) / high_total:.0f}% of the total at most; DynamoDB's write units are the cost.")
