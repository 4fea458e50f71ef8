"""make bench: the ratios of the Python reference to task-events, from runtime_bench's rows."""
import sys


def rows(path):
    with open(path) as table:
        return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in table if line.startswith("|")]


def number(cell):
    return float(cell.split()[0])


def find(table, needle):
    return next(row for row in table if needle in row[0])


init, events = rows(sys.argv[1]), rows(sys.argv[2])
rust_init, python_init = find(init, "task-events"), find(init, "reference_task_events")
rust_events, python_events = find(events, "task-events"), find(events, "reference_task_events")
print("| Python reference ÷ task-events | ratio |")
print("|---|---:|")
print(f"| init (median) | {number(python_init[2]) / number(rust_init[2]):.1f}× |")
print(f"| CPU per event | {number(python_events[5]) / number(rust_events[5]):.1f}× |")
print(f"| peak RSS under 1,000 events | {number(python_events[6]) / number(rust_events[6]):.1f}× |")
