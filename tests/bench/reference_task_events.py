"""The task-events work written the obvious way in Python with boto3, for `make bench` only (not
shipped): a reference for init time, per-event CPU and memory, run by runtime_bench through the same
Runtime API stand-in as the Rust bootstrap. It does less than task-events: the versioned record write
and the EMF line with the once-per-task ledger, but no rollups and no input validation beyond KeyError.
The loop at the bottom is what a custom runtime (or awslambdaric) does: GET next, handle, POST response."""
import json
import os
import sys
import time
import urllib.request
from datetime import datetime

import boto3

TABLE = os.environ.get("TABLE_NAME", "ecs-task-timing-tasks")
NAMESPACE = os.environ.get("METRICS_NAMESPACE", "ECS/TaskTiming")
RETENTION_DAYS = int(os.environ.get("RETENTION_DAYS", "90"))
dynamodb = boto3.client("dynamodb")

PHASES = {  # metric: (from, to)
    "TaskStartupTime": ("createdAt", "startedAt"),
    "ProvisioningTime": ("createdAt", "pullStartedAt"),
    "ImagePullTime": ("pullStartedAt", "pullStoppedAt"),
    "ContainerStartTime": ("pullStoppedAt", "startedAt"),
    "RunTime": ("startedAt", "executionStoppedAt"),
    "ShutdownTime": ("executionStoppedAt", "stoppedAt"),
    "TaskLifetime": ("createdAt", "stoppedAt"),
}


def seconds(detail, start, end):
    if start in detail and end in detail:
        parse = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (parse(detail[end]) - parse(detail[start])).total_seconds()
    return None


def handler(event):
    detail = event["detail"]
    family, revision = detail["taskDefinitionArn"].rsplit("/", 1)[1].rsplit(":", 1)
    cluster = detail["clusterArn"].rsplit("/", 1)[1]
    timings = {metric: seconds(detail, *span) for metric, span in PHASES.items()}
    timings = {metric: value for metric, value in timings.items() if value is not None}
    due = set(timings) | {"TasksStarted"} if "startedAt" in detail else set(timings)
    if detail.get("lastStatus") == "STOPPED":
        due.add("TasksStopped")
    item = {key: {"S": value} for key, value in detail.items() if isinstance(value, str) and key != "taskArn"}
    item.update({f"{metric}": {"N": str(value)} for metric, value in timings.items()})
    item["expiresAt"] = {"N": str(int(time.time()) + RETENTION_DAYS * 86400)}
    names = {f"#a{i}": key for i, key in enumerate(item)}
    values = {f":v{i}": value for i, value in enumerate(item.values())}
    values[":version"] = {"N": str(detail["version"])}
    values[":due"] = {"SS": sorted(due)} if due else {"SS": ["none"]}
    sets = ", ".join(f"#a{i} = :v{i}" for i in range(len(item)))
    try:
        old = dynamodb.update_item(
            TableName=TABLE, Key={"taskArn": {"S": detail["taskArn"]}},
            UpdateExpression=f"SET {sets}, version = :version ADD metricsEmitted :due",
            ConditionExpression="attribute_not_exists(taskArn) OR version < :version",
            ExpressionAttributeNames=names, ExpressionAttributeValues=values, ReturnValues="ALL_OLD",
        ).get("Attributes", {})
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return {"outcome": "duplicate or stale"}
    emitted = set(old.get("metricsEmitted", {}).get("SS", []))
    new = sorted(due - emitted)
    if new:
        metrics = {metric: timings.get(metric, 1) for metric in new}
        print(json.dumps({
            "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["ClusterName", "TaskFamily", "TaskRevision"], ["ClusterName", "TaskFamily"]],
                "Metrics": [{"Name": m, "Unit": "Count" if m.startswith("Tasks") else "Seconds"} for m in new]}]},
            "ClusterName": cluster, "TaskFamily": family, "TaskRevision": revision, **metrics,
            "taskArn": detail["taskArn"], "version": detail["version"]}), flush=True)
    return {"outcome": "written", "metricsEmitted": new}


def main():
    api = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"
    while True:
        with urllib.request.urlopen(f"{api}/invocation/next") as invocation:
            request_id = invocation.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(invocation.read())
        try:
            body, path = json.dumps(handler(event)).encode(), f"{api}/invocation/{request_id}/response"
        except Exception as err:  # noqa: BLE001: reported to the runtime, as a runtime does
            body, path = json.dumps({"errorType": type(err).__name__, "errorMessage": str(err)}).encode(), \
                f"{api}/invocation/{request_id}/error"
        urllib.request.urlopen(urllib.request.Request(path, data=body, method="POST")).close()


if __name__ == "__main__":
    sys.exit(main())
