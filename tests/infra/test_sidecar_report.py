"""The image report end to end: task-sidecar (the real binary, `report`, its one-shot form) reads a stand-in
of the Task Metadata endpoint v4, puts its report on the local EventBridge, the stack's rule routes it (to
an SQS observer: moto cannot invoke a function), and task-events (under `cargo lambda watch`, through
`cargo lambda invoke`) merges what arrived into the task's record in DynamoDB. With a readiness signal (the
counted containers' health checks, or a readiness URL served here) the one report is held back until the
task is ready, the bound passes, or the sidecar is told to stop (SIGTERM)."""
import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from datetime import datetime

import pytest

from conftest import ROOT, create_stack, invoke_task_events, unique

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


def report(sidecar, endpoint, deadline="20s", exclude=("--exclude-container", "task-sidecar"), extra=()):
    return subprocess.run([sidecar, "report", "--metadata-uri", endpoint, *exclude,
                           "--report-wait", "2s", "--report-deadline", deadline, *extra],
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
    assert detail["schemaVersion"] == 2
    assert (detail["family"], detail["revision"], detail["excludedContainers"]) == ("checkout-soci", 14, ["task-sidecar"])
    assert [(c["name"], c["snapshotter"]) for c in detail["containers"]] == [("app", "soci"), ("task-sidecar", "overlayfs")]
    assert detail["containers"][0]["startedAt"] == "2026-11-20T10:00:21.512Z"
    assert "readiness" not in detail, "no health check, no URL: no readiness"

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


# --- Readiness: held back until the task is ready (health checks, or a readiness URL), bounded. ---

def fixture_task(name, task_id, edit=None):
    task = json.loads(metadata(name, task_id))
    if edit:
        edit(task)
    return task, json.dumps(task).encode()


def millis(text):
    """Epoch milliseconds of a report timestamp (`2026-11-20T10:00:48.123Z`)."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def stored(aws, task_arn):
    return aws("dynamodb").get_item(TableName=os.environ["TABLE_NAME"], Key={"taskArn": {"S": task_arn}},
                                    ConsistentRead=True)["Item"]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ReadyUrl:
    """The application's readiness URL on loopback: not listening until `listen()`, then `status` to every
    GET, each answer's status kept in `answered`."""

    def __init__(self, port):
        self.port, self.status, self.answered, self.server = port, 503, [], None
        self.url = f"http://127.0.0.1:{port}/health"

    def listen(self, status):
        self.status = status
        ready = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                status = ready.status
                ready.answered.append(status)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()


def wait_until(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_health_checks_starting_then_healthy_give_the_ready_time_and_task_events_keeps_it(aws, sidecar, observed):
    task_id = uuid.uuid4().hex
    _, starting = fixture_task("fargate-health-starting.json", task_id)
    healthy_task, healthy = fixture_task("fargate-health-healthy.json", task_id)
    # The first read (containers started), two polls STARTING, then HEALTHY for ever.
    stand_in = StandIn([starting, starting, starting, healthy])
    try:
        result = report(sidecar, stand_in.endpoint, extra=("--ready-poll", "100ms"))
    finally:
        stand_in.close()
    assert result.returncode == 0, result.stderr
    assert stand_in.served >= 4, "it kept reading /task until HEALTHY"
    # The app's statusSince to the millisecond (nanoseconds truncated); the left-out sidecar's later one is not it.
    app_since = next(c["Health"]["statusSince"] for c in healthy_task["Containers"] if c["Name"] == "app")
    expected = {"signal": "healthCheck", "readyAt": app_since[:23] + "Z"}
    assert expected["readyAt"] == "2026-11-20T10:00:48.123Z"
    assert json.loads(result.stdout)["readiness"] == expected
    event = received(aws, observed, healthy_task["TaskARN"])
    assert event["detail"]["readiness"] == expected

    answer = invoke_task_events(event)
    assert answer["outcome"] == "written", answer
    item = stored(aws, healthy_task["TaskARN"])
    # The record's stored form keeps the signal as one letter (crates/timing-dynamodb/src/record_item.rs).
    assert item.get("rds") == {"S": "h"}, item
    assert item.get("rdAt") == {"N": str(millis(expected["readyAt"]))}, item


def test_a_task_never_healthy_is_reported_not_ready_once_the_bound_passes(aws, sidecar, observed):
    def unhealthy(task):
        task["Containers"][0]["Health"] = {"status": "UNHEALTHY", "statusSince": "2026-11-20T10:00:41Z", "exitCode": 1}
    task, body = fixture_task("fargate-health-starting.json", uuid.uuid4().hex, unhealthy)
    stand_in = StandIn([body])
    began = time.monotonic()
    try:
        result = report(sidecar, stand_in.endpoint, extra=("--ready-wait", "3s"))
    finally:
        stand_in.close()
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    assert 3.0 <= elapsed < 8.0, f"sent {elapsed:.2f} s after the start: about the 3 s bound, never before"
    assert stand_in.served >= 5, "it kept looking until the bound"
    assert json.loads(result.stdout)["readiness"] == {"signal": "healthCheck"}
    assert received(aws, observed, task["TaskARN"])["detail"]["readiness"] == {"signal": "healthCheck"}
    assert "not ready within 3 s" in result.stderr and "container app is UNHEALTHY" in result.stderr


def drop_app_health(task):
    del task["Containers"][0]["Health"]


@pytest.mark.parametrize("fixture, edit", [("fargate-soci-with-sidecar.json", None),
                                           ("fargate-health-healthy.json", drop_app_health)],
                         ids=["no health check", "only the left-out sidecar has one"])
def test_without_a_signal_there_is_no_readiness_and_no_wait(aws, sidecar, observed, fixture, edit):
    task, body = fixture_task(fixture, uuid.uuid4().hex, edit)
    stand_in = StandIn([body])
    try:
        result = report(sidecar, stand_in.endpoint)
    finally:
        stand_in.close()
    assert result.returncode == 0, result.stderr
    assert "readiness" not in json.loads(result.stdout)
    assert stand_in.served == 1, "one read of /task, no polling"
    assert "readiness" not in received(aws, observed, task["TaskARN"])["detail"]
    assert "no readiness signal" in result.stderr


def test_a_readiness_url_refusing_then_503_then_200_gives_the_time_of_the_first_200(aws, sidecar, observed):
    task, body = fixture_task("fargate-soci-with-sidecar.json", uuid.uuid4().hex)
    stand_in, ready = StandIn([body]), ReadyUrl(free_port())
    command = [sidecar, "report", "--metadata-uri", stand_in.endpoint, "--exclude-container", "task-sidecar",
               "--ready-url", ready.url, "--ready-poll", "100ms"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # refused: nothing listens yet
        ready.listen(503)
        wait_until(lambda: len(ready.answered) >= 3, 10, "the sidecar never asked the readiness URL")
        answering_200 = time.time()
        ready.status = 200
        stdout, stderr = child.communicate(timeout=30)
        seen = time.time()
    finally:
        child.kill()
        stand_in.close()
        ready.close()
    assert child.returncode == 0, stderr
    assert ready.answered[-1] == 200 and 503 in ready.answered
    readiness = json.loads(stdout)["readiness"]
    assert readiness["signal"] == "url"
    assert int(answering_200 * 1000) <= millis(readiness["readyAt"]) <= seen * 1000, (answering_200, readiness, seen)
    log = next(json.loads(line) for line in stderr.splitlines() if '"task ready"' in line)
    refused = log["fields"]["looks"] - len(ready.answered)
    assert refused >= 5, f"{refused} looks refused before the URL listened (1 s at 100 ms)"
    event = received(aws, observed, task["TaskARN"])
    assert event["detail"]["readiness"] == readiness

    answer = invoke_task_events(event)
    assert answer["outcome"] == "written", answer
    item = stored(aws, task["TaskARN"])
    assert item.get("rds") == {"S": "u"}, item
    assert item.get("rdAt") == {"N": str(millis(readiness["readyAt"]))}, item


def test_a_readiness_url_never_2xx_is_reported_not_ready(aws, sidecar, observed):
    task, body = fixture_task("fargate-soci-with-sidecar.json", uuid.uuid4().hex)
    stand_in, ready = StandIn([body]), ReadyUrl(free_port())
    ready.listen(503)
    try:
        result = report(sidecar, stand_in.endpoint, extra=("--ready-url", ready.url, "--ready-wait", "2s"))
    finally:
        stand_in.close()
        ready.close()
    assert result.returncode == 0, result.stderr
    assert len(ready.answered) >= 4 and set(ready.answered) == {503}
    assert json.loads(result.stdout)["readiness"] == {"signal": "url"}
    assert received(aws, observed, task["TaskARN"])["detail"]["readiness"] == {"signal": "url"}
    assert "answered HTTP 503" in result.stderr


@pytest.mark.parametrize("command", ["run", "report"])
def test_sigterm_during_the_wait_sends_the_report_at_once(aws, sidecar, observed, command):
    task, body = fixture_task("fargate-soci-with-sidecar.json", uuid.uuid4().hex)
    stand_in, ready = StandIn([body]), ReadyUrl(free_port())
    ready.listen(503)
    extra = {"run": ["--interval", "60s", "--namespace", "Test/ReadyWait", "--listen", f"127.0.0.1:{free_port()}",
                     "--flush-timeout", "5s"],
             "report": []}[command]
    # The default 10 min bound: only the SIGTERM can end this wait.
    child = subprocess.Popen([sidecar, command, "--metadata-uri", stand_in.endpoint, "--exclude-container",
                              "task-sidecar", "--ready-url", ready.url, *extra],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(ready.answered) >= 2, 15, "the sidecar never asked the readiness URL")
        child.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        _, stderr = child.communicate(timeout=30)
        stopped_after = time.monotonic() - signalled
    finally:
        child.kill()
        stand_in.close()
        ready.close()
    assert child.returncode == 0, stderr
    assert stopped_after < 5.0, f"{stopped_after:.2f} s after SIGTERM: within the flush window"
    assert "task stopping before it was ready" in stderr
    assert received(aws, observed, task["TaskARN"])["detail"]["readiness"] == {"signal": "url"}
