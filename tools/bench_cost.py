"""make bench: write units per task and cost per million task state change events, from this run's figures.

Inputs: runtime_bench events (handler time, CPU and log bytes per event), roundtrips (record size,
task-rollups' time per batch), rollup_scaling (rollup item sizes by tasks a month), and the stream
mapping's defaults in infra/template.yaml. Prices: us-east-1 list prices, November 2026.

A task sends three events (RUNNING; RUNNING with desiredStatus STOPPED; STOPPED); RUNNING makes 4
phases known, STOPPED 3, the middle one nothing new. Each is one record write (1 unit per KB started)
and one index write (projection ALL: the same size). task-rollups writes each rollup item a batch
touches once (1 unit per KB started of the larger of the item before and after). A series alone on
the stack at R tasks an hour puts 3R/3600 records a second on the stream; a batch holds what arrives
in the batching window (at least 1 record, at most the batch size). A task alone in its batches costs
its own 18 item writes (counts and 4 phases at RUNNING, counts and 3 at STOPPED, hour and day); a
batch with k tasks of the series writes each of its items once: 16 items (counts and 7 phases, hour
and day), plus 4 more when stops belong to an earlier hour than starts (counted always).
"""
import math
import re
import sys

LAMBDA_REQUEST = 0.20 / 1e6
LAMBDA_GB_SECOND = 0.0000133334  # arm64
MEMORY_GB = 128 / 1024
WRITE_UNIT = 0.625 / 1e6
LOG_GB = 0.50
EVENTS = 1_000_000
TASKS = EVENTS / 3
# Per rollup item, once per shard that wrote it: `applied#` + a shard id of 37 characters + 40 digits.
GUARD_BYTES = 85
# Stream shards are ephemeral; assumed here (not measured): DynamoDB rolls them over about every 4 hours,
# so over its period an item of a one-partition table is written by up to 2 shards (hour) or 7 (day).
GUARDS = {"hour": 2, "day": 7}
TEMPLATE = "infra/template.yaml"
# (tasks per family-hour, rollup sizes measured at this many tasks a month, factor on those sizes)
RATES = (
    (10, "100000", 1),  # 7,200 a month: the 100,000 sizes are an upper bound
    (1000, "1000000", 1),  # 720,000 a month: the 1,000,000 sizes are an upper bound
    (10000, "1000000", 2),  # 7,200,000 a month: not measured; twice the 1,000,000 sizes, assumed
)
TARGET_RATE = 1000


def cells(path, needle):
    for line in open(path):
        if line.startswith("|") and needle in line:
            return [cell.strip() for cell in line.strip().strip("|").split("|")]
    raise SystemExit(f"{path}: no row with {needle!r}")


def number(cell):
    return float(re.match(r"[\d.]+", cell.strip()).group())


def kb(size):
    return max(1, math.ceil(size / 1024))


def template_default(parameter):
    text = open(TEMPLATE).read()
    match = re.search(rf"^  {parameter}:\n(?:    .*\n)*?    Default: (\d+)", text, re.M)
    if not match:
        raise SystemExit(f"{TEMPLATE}: no default for {parameter}")
    return int(match.group(1))


events_file, roundtrips_file, rollups_file = sys.argv[1:4]
row = cells(events_file, "target/release/task-events")
handler_mean_ms, cpu_ms, log_bytes = number(row[2]), number(row[5]), number(row[7])
record_bytes = number(cells(roundtrips_file, "record size")[1].split("/")[1])  # the largest record
consumer_ms = number(cells(roundtrips_file, "50 tasks of one family-hour")[5])
batch_size = template_default("StreamBatchSize")
window = template_default("StreamBatchingWindowSeconds")

sizes = {}
for tasks in {size for _, size, _ in RATES}:
    notes = cells(rollups_file, f"| {tasks} | 31 whole days | rollups")[-1]
    # Mean hour and day phase items: at the rates below (fewer tasks an hour than these months have on
    # average) an item ends its period at most this size, and a write costs the item's size then.
    hour, day = (number(m) for m in re.findall(r"(?:hour|day) phase items mean ([\d.]+) B", notes))
    sizes[tasks] = (hour, day)


def model(rate, sizes_at, factor, window=window):
    hour, day = sizes[sizes_at]
    unit_hour = kb(hour * factor + GUARDS["hour"] * GUARD_BYTES)
    unit_day = kb(day * factor + GUARDS["day"] * GUARD_BYTES)
    records_per_batch = min(batch_size, 1 + 3 * rate / 3600 * window)
    tasks_per_batch = records_per_batch / 3
    alone = 4 + 7 * (unit_hour + unit_day)  # counts items are small: 1 unit each
    shared = (2 + 7 * unit_hour + 7 * unit_day + 2 + 3 * unit_hour) / tasks_per_batch
    rollup_units = min(alone, shared)
    record_units = 3 * 2 * kb(record_bytes)
    return {
        "rate": rate,
        "records_per_batch": records_per_batch,
        "unit_hour": unit_hour,
        "unit_day": unit_day,
        "record_units": record_units,
        "rollup_units": rollup_units,
        "units": record_units + rollup_units,
        "batches": EVENTS / records_per_batch,
        "sizes": (hour * factor, day * factor),
        "assumed": factor != 1,
    }


def money(value):
    return f"${value:,.2f}"


models = [model(*rate) for rate in RATES]
print(
    f"Write units per task (3 events, no duplicates), the stream mapping's defaults ({batch_size} records, "
    f"{window} s window), one series alone on the stack:"
)
print()
print("| tasks per family-hour | records per batch | record + index | rollup item units (hour / day) | rollups | **per task** |")
print("|---:|---:|---:|---|---:|---:|")
for m in models:
    hour, day = m["sizes"]
    note = ", assumed: twice those of 1,000,000 tasks a month" if m["assumed"] else ""
    print(
        f"| {m['rate']:,} | {m['records_per_batch']:.1f} | {m['record_units']} | {m['unit_hour']} / {m['unit_day']}"
        f" ({hour:.0f} B / {day:.0f} B{note}) | {m['rollup_units']:.2f} | **{m['units']:.2f}** |"
    )
print()
target_rate = next(rate for rate in RATES if rate[0] == TARGET_RATE)
print(f"The batching window's price at {TARGET_RATE:,} tasks per family-hour (`StreamBatchingWindowSeconds`; the lag is about the window):")
print()
print("| window | records per batch | rollup units per task | per task |")
print("|---:|---:|---:|---:|")
for seconds in (0, 5, 30, 60, 120, 300):
    m = model(*target_rate, window=seconds)
    print(f"| {seconds} s | {m['records_per_batch']:.1f} | {m['rollup_units']:.2f} | {m['units']:.2f} |")
print()
target = next(m for m in models if m["rate"] == TARGET_RATE)
consumer_billed = math.ceil(consumer_ms)
consumer = target["batches"] * (LAMBDA_REQUEST + consumer_billed / 1000 * MEMORY_GB * LAMBDA_GB_SECOND)
slow_billed, fast_billed = math.ceil(handler_mean_ms), math.ceil(cpu_ms)
slow = EVENTS * slow_billed / 1000 * MEMORY_GB * LAMBDA_GB_SECOND
fast = EVENTS * fast_billed / 1000 * MEMORY_GB * LAMBDA_GB_SECOND
dynamodb = TASKS * target["units"] * WRITE_UNIT
logs = EVENTS * log_bytes / 1e9 * LOG_GB
requests = EVENTS * LAMBDA_REQUEST
print(f"Cost per million events at {TARGET_RATE:,} tasks per family-hour:")
print()
print("| item | arithmetic (figures from this run) | per million events |")
print("|---|---|---:|")
print(f"| task-events requests | 1,000,000 × $0.20 / 1M | {money(requests)} |")
print(
    f"| task-events duration, 128 MB arm64, at the handler time measured against moto (mean {handler_mean_ms:.2f} ms,"
    f" billed {slow_billed} ms; an upper bound: moto answers slowly) | 1,000,000 × {slow_billed / 1000:.3f} s × 0.125 GB"
    f" × $0.0000133334 | {money(slow)} |"
)
print(
    f"| task-events duration at the CPU per event ({cpu_ms:.3f} ms, billed {fast_billed} ms; a lower bound: DynamoDB's"
    f" answer time comes on top) | 1,000,000 × {fast_billed / 1000:.3f} s × 0.125 GB × $0.0000133334 | {money(fast)} |"
)
print(
    f"| task-rollups: {target['batches']:,.0f} batches of {target['records_per_batch']:.0f} records, {consumer_ms:.1f} ms"
    f" each (a batch against moto; an upper bound) | {target['batches']:,.0f} × ($0.20 / 1M + {consumer_billed / 1000:.3f} s"
    f" × 0.125 GB × $0.0000133334) | {money(consumer)} |"
)
print(
    f"| DynamoDB writes, on-demand: records of {record_bytes:.0f} B at most, {target['units']:.2f} units a task (above)"
    f" | 333,333 tasks × {target['units']:.2f} units × $0.625 / 1M | {money(dynamodb)} |"
)
print(
    f"| CloudWatch Logs ingestion: {log_bytes:.0f} B written per event (EMF and JSON application logs) |"
    f" 1,000,000 × {log_bytes:.0f} B × $0.50 / GB | {money(logs)} |"
)
low_total = requests + fast + consumer + dynamodb + logs
high_total = requests + slow + consumer + dynamodb + logs
print(
    f"| **total** (X-Ray and custom metrics not included: docs/deploy.md, What it costs) | |"
    f" **{money(low_total)} to {money(high_total)}** |"
)
print()
print(f"DynamoDB is {100 * dynamodb / low_total:.0f}% of the lower total; the records are {target['record_units']} of its {target['units']:.2f} units a task.")
