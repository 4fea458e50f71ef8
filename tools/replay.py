"""make replay FROM=... TO=... [STACK_NAME=...] (tools/deploy.sh replay): replays what the stack's event archive
holds of [FROM, TO) into the stack's rule alone (so into task-events), and waits until EventBridge says it is
done. Replays are idempotent by construction: an event task-events already has is a duplicate or stale and
changes nothing, a missed one is written, and each metric still goes out once (docs/history.md)."""
import argparse
import datetime
import re
import sys
import time

import boto3

FINAL = {"COMPLETED", "FAILED", "CANCELLED"}


def instant(text):
    value = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a time zone (2026-11-20T09:00:00Z)")
    return value


def replay_name(stack, start, end):
    """At most 64 characters of [.-_A-Za-z0-9], unique per window and second."""
    stamp = lambda t: t.astimezone(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
    name = f"{stack}-{stamp(start)}-{stamp(end)}-{int(time.time())}"
    return re.sub(r"[^.\-_A-Za-z0-9]", "-", name)[-64:]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stack")
    parser.add_argument("--from", dest="start", type=instant, required=True)
    parser.add_argument("--to", dest="end", type=instant, required=True)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the replay")
    args = parser.parse_args(argv)
    if args.end <= args.start:
        parser.error("--to must be after --from")
    stacks = boto3.client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if "ArchiveArn" not in outputs:
        sys.exit(f"replay: stack {args.stack} has no event archive (deploy this version first)")
    # The archive's own bus: the central one in central mode (EventBusArn), else the default one, named
    # from arn:<partition>:events:<region>:<account>:archive/<name>.
    partition, region, account = outputs["ArchiveArn"].split(":")[1:2] + outputs["ArchiveArn"].split(":")[3:5]
    bus = outputs.get("EventBusArn") or f"arn:{partition}:events:{region}:{account}:event-bus/default"
    events = boto3.client("events")
    name = replay_name(args.stack, args.start, args.end)
    events.start_replay(
        ReplayName=name,
        Description=f"{args.stack}: events of [{args.start.isoformat()}, {args.end.isoformat()}) into task-events",
        EventSourceArn=outputs["ArchiveArn"],
        EventStartTime=args.start,
        EventEndTime=args.end,
        # Only the stack's rule: other rules on the bus never see the replayed events.
        Destination={"Arn": bus, "FilterArns": [outputs["RuleArn"]]},
    )
    deadline = time.monotonic() + args.timeout
    while True:
        replay = events.describe_replay(ReplayName=name)
        if replay["State"] in FINAL or time.monotonic() > deadline:
            break
        time.sleep(5)
    print(f"replay {name}: {replay['State']}"
          + (f" ({replay['StateReason']})" if replay.get("StateReason") else "")
          + (f", events up to {replay['EventLastReplayedTime']}" if replay.get("EventLastReplayedTime") else ""))
    return 0 if replay["State"] == "COMPLETED" else 1


if __name__ == "__main__":
    sys.exit(main())
