"""The image report end to end: task-sidecar (the real binary, `report`, its one-shot form) reads a stand-in
of the Task Metadata endpoint v4, puts its report on the local EventBridge, the stack's rule routes it (to
an SQS observer: moto cannot invoke a function), and task-events (under `cargo lambda watch`, through
`cargo lambda invoke`) merges what arrived into the task's record in DynamoDB."""
import http.server
import json
import os
import subprocess
import threading
import time
import uuid

import pytest

from conftest import ROOT, create_stack, unique

METADATA = ROOT / "fixtures" / "task-metadata"


class StandIn:
    """`GET /v4/standin/task`: the given replies in turn (a status code or a body), the last one for ever;
    `GET /v4/standin` (the container's own metadata): `container`, or 404."""

    def __init__(self, replies, container=None):
        self.replies, self.served = list(replies), 0
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/v4/standin" and container is not None:
                    reply = json.dumps(container).encode()
                elif self.path == "/v4/standin/task":
                    reply = stand_in.replies[min(stand_in.served, len(stand_in.replies) - 1)]
                    stand_in.served += 1
                else:
                    reply = 404
                if isinstance(reply, int):
                    self.send_response(reply)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}/v4/standin"

    def close(self):
        self.server.shutdown()


def metadata(name, task_id):
    """A fixture as this task's: its own task id, so runs never share a record."""
    task = json.loads((METADATA / name).read_text(encoding="utf-8"))
    task["TaskARN"] = task["TaskARN"].rsplit("/", 1)[0] + "/" + task_id
    return json.dumps(task).encode()


@pytest.fixture(scope="module")
def sidecar():
    subprocess.run(["cargo", "build", "-q", "-p", "task-sidecar"], cwd=ROOT, check=True)
    return str(ROOT / "target" / "debug" / "task-sidecar")


@pytest.fixture(scope="module")
def observed(aws):
    """The stack's rule, with an SQS observer as its target."""
    cloudformation, events, sqs = aws("cloudformation"), aws("events"), aws("sqs")
    stack = unique("report")
    outputs = create_stack(cloudformation, stack, {"Clusters": "shop-prod"})
    queue_url = sqs.create_queue(QueueName=unique("reports"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_targets(Rule=outputs["RuleName"], Targets=[{"Id": "observe", "Arn": queue_arn}])
    yield queue_url
    cloudformation.delete_stack(StackName=stack)
    for table in (outputs["TasksTableName"], outputs["RollupTableName"]):
        aws("dynamodb").delete_table(TableName=table)


def report(sidecar, endpoint, deadline="20s", exclude=("--exclude-container", "task-sidecar")):
    return subprocess.run([sidecar, "report", "--metadata-uri", endpoint, *exclude,
                           "--report-wait", "2s", "--report-deadline", deadline],
                          capture_output=True, text=True, timeout=60)


def received(aws, queue_url, task_arn):
    sqs = aws("sqs")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            event = json.loads(message["Body"])
            if event["detail"]["taskArn"] == task_arn:
                return event
    raise AssertionError(f"no report of {task_arn} reached the rule's target")


def invoke_task_events(event):
    answer = subprocess.run(["cargo", "lambda", "invoke", "task-events", "--invoke-address", "127.0.0.1",
                             "--invoke-port", os.environ["LAMBDA_INVOKE_PORT"], "--data-ascii", json.dumps(event)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout)


def test_a_lazy_loaded_task_is_reported_routed_and_merged(aws, sidecar, observed):
    task_id = uuid.uuid4().hex
    # The endpoint is not ready at first (503), then answers: the sidecar retries.
    stand_in = StandIn([503, metadata("fargate-soci-with-sidecar.json", task_id)])
    try:
        result = report(sidecar, stand_in.endpoint)
    finally:
        stand_in.close()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"reported": True, "snapshotter": "soci"}
    assert stand_in.served >= 2
    task_arn = f"arn:aws:ecs:eu-west-1:123456789012:task/shop-prod/{task_id}"
    event = received(aws, observed, task_arn)
    assert (event["source"], event["detail-type"]) == ("ecs-task-timing.sidecar", "ECS Task Image Report")
    detail = event["detail"]
    assert (detail["family"], detail["revision"], detail["excludedContainers"]) == ("checkout-soci", 14, ["task-sidecar"])
    assert [(c["name"], c["snapshotter"]) for c in detail["containers"]] == [("app", "soci"), ("task-sidecar", "overlayfs")]
    assert detail["containers"][0]["startedAt"] == "2026-11-20T10:00:21.512Z"

    answer = invoke_task_events(event)
    assert (answer["outcome"], answer["snapshotter"]) == ("written", "soci")
    assert answer["metricsEmitted"] == ["TasksBySnapshotter"]
    item = aws("dynamodb").get_item(TableName=os.environ["TABLE_NAME"], Key={"taskArn": {"S": task_arn}}, ConsistentRead=True)["Item"]
    assert item["snapshotter"] == {"S": "soci"} and "version" not in item, "the report alone: no state change yet"
    again = invoke_task_events(event)
    assert (again["outcome"], again["metricsEmitted"]) == ("duplicate", [])


@pytest.mark.parametrize("fixture, expected", [("fargate-soci-with-sidecar.json", "soci"), ("fargate-overlayfs.json", "overlayfs")])
def test_by_default_the_sidecar_leaves_its_own_container_out(aws, sidecar, observed, fixture, expected):
    task_id = uuid.uuid4().hex
    stand_in = StandIn([metadata(fixture, task_id)], container={"Name": "task-sidecar", "DockerId": "x"})
    try:
        result = report(sidecar, stand_in.endpoint, exclude=())
    finally:
        stand_in.close()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["snapshotter"] == expected
    task_arn = json.loads(metadata(fixture, task_id))["TaskARN"]
    assert received(aws, observed, task_arn)["detail"]["excludedContainers"] == ["task-sidecar"]


def test_without_its_container_metadata_the_sidecar_excludes_nothing_and_says_so(sidecar, observed):
    stand_in = StandIn([metadata("fargate-soci-with-sidecar.json", uuid.uuid4().hex)])
    try:
        result = report(sidecar, stand_in.endpoint, exclude=())
    finally:
        stand_in.close()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["snapshotter"] == "mixed", "its own overlayfs counted"
    assert "no container is excluded" in result.stderr


def test_without_a_snapshotter_field_the_task_is_unknown(aws, sidecar, observed):
    task_id = uuid.uuid4().hex
    task = json.loads(metadata("ec2-no-clock-drift.json", task_id))
    # In a watched cluster (the rule's), its task ARN naming the same one (task-events checks they agree).
    task["Cluster"] = "shop-prod"
    task["TaskARN"] = f"arn:aws:ecs:ap-southeast-2:456789012345:task/shop-prod/{task_id}"
    stand_in = StandIn([json.dumps(task).encode()])
    try:
        result = report(sidecar, stand_in.endpoint)
    finally:
        stand_in.close()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["snapshotter"] == "unknown"
    event = received(aws, observed, task["TaskARN"])
    assert all("snapshotter" not in c for c in event["detail"]["containers"]), "absent, never guessed"


def test_a_report_that_cannot_be_read_fails_the_one_shot(sidecar):
    stand_in = StandIn([500])
    try:
        result = report(sidecar, stand_in.endpoint, deadline="2s")
    finally:
        stand_in.close()
    assert result.returncode == 1
    assert "no report" in result.stderr and "HTTP 500" in result.stderr
