"""Shared by the infra tests: AWS clients on the local stack, the template, and deploying it.

Run by `make test` (tools/test.sh) inside tools/stack.sh, which exports AWS_ENDPOINT_URL and friends.
"""
import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"


def pytest_configure(config):
    if not os.environ.get("AWS_ENDPOINT_URL", "").startswith("http://127.0.0.1"):
        pytest.exit("the infra tests run against the local stack only: use `make test`", returncode=2)


@pytest.fixture(scope="session")
def aws():
    session = boto3.session.Session()
    # boto3 reaches moto directly: the CBOR bridge (AWS_ENDPOINT_URL_CLOUDWATCH) is for the Rust SDK.
    return lambda service: session.client(service, endpoint_url=os.environ["AWS_ENDPOINT_URL"])


@pytest.fixture(scope="session")
def template():
    return cfn_yaml.load(str(TEMPLATE))


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for_stack(cloudformation, name, expected):
    """Waits (60 s at most) for the stack's operation to end, and checks it ended as `expected`."""
    deadline = time.monotonic() + 60
    while (status := cloudformation.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]).endswith("IN_PROGRESS"):
        assert time.monotonic() < deadline, f"{name} still {status} after 60 s"
        time.sleep(0.2)
    assert status == expected, status


def drain(aws, queue_url, wait):
    """Every message the queue receives within `wait` seconds, deleted, as parsed bodies."""
    sqs, bodies = aws("sqs"), []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            bodies.append(json.loads(message["Body"]))
    return bodies


def create_stack(cloudformation, name, parameters):
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=TEMPLATE.read_text(encoding="utf-8"),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    wait_for_stack(cloudformation, name, "CREATE_COMPLETE")
    return {o["OutputKey"]: o["OutputValue"] for o in cloudformation.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]}


def make(*args):
    """A make target as a user runs it, with the local stack's environment."""
    result = subprocess.run(["make", "-s", *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"make {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def invoke_task_events(event):
    """task-events under the local stack's `cargo lambda watch`, as EventBridge would invoke it: its answer."""
    answer = subprocess.run(["cargo", "lambda", "invoke", "task-events", "--invoke-address", "127.0.0.1",
                             "--invoke-port", os.environ["LAMBDA_INVOKE_PORT"], "--data-ascii", json.dumps(event)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout)
