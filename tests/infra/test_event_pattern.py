"""The rule's event pattern (state changes, and the sidecar's image reports), proven on the local EventBridge: every sample event (the project's
fixtures, ../shared/ecs-events when present) and non-matching variants are published, an observation
queue is added as a second target, and exactly the expected events must arrive.

The expectation is computed here from the event's own fields (source, detail-type, lastStatus, the
cluster's name or ARN), not from the pattern."""
import json
from pathlib import Path

import pytest

from conftest import ROOT, create_stack, unique

SAMPLES = sorted((ROOT / "fixtures" / "events").glob("*.json")) + sorted((ROOT.parent / "shared" / "ecs-events").glob("*.json"))
WATCHED_NAMES = ["shop-prod", "skynet"]
WATCHED_ARNS = ["arn:aws:ecs:us-east-1:123456789012:cluster/batch"]
STATES = ["RUNNING", "STOPPED"]
REPORT_SOURCE, REPORT_TYPE = "ecs-task-timing.sidecar", "ECS Task Image Report"


def envelope(path):
    event = json.loads(path.read_text(encoding="utf-8"))
    if "detail" not in event:  # a detail-only sample: it is the detail of a task state change
        event = {"source": "aws.ecs", "detail-type": "ECS Task State Change", "detail": event}
    return event


def variants():
    """(case, source, detail-type, detail) for every sample, plus cases that must not match."""
    cases = []
    for path in SAMPLES:
        event = envelope(path)
        cases.append((path.name, event.get("source"), event.get("detail-type"), event.get("detail", {})))
    running = envelope(ROOT / "fixtures" / "events" / "web-soci-running.json")["detail"]
    arn = running["clusterArn"].rsplit("/", 1)[0]
    for state in ["PROVISIONING", "PENDING", "ACTIVATING", "DEACTIVATING", "STOPPING", "DEPROVISIONING"]:
        cases.append((f"state {state}", "aws.ecs", "ECS Task State Change", dict(running, lastStatus=state)))
    for cluster in ["preprod-shop-prod", "shop-prod-2", "shop", "batch", "other"]:
        cases.append((f"cluster {cluster}", "aws.ecs", "ECS Task State Change", dict(running, clusterArn=f"{arn}/{cluster}")))
    batch_elsewhere = "arn:aws:ecs:us-east-1:999999999999:cluster/batch"  # watched by ARN, so not this one
    cases.append(("batch in another account", "aws.ecs", "ECS Task State Change", dict(running, clusterArn=batch_elsewhere)))
    cases.append(("batch by ARN", "aws.ecs", "ECS Task State Change", dict(running, clusterArn=WATCHED_ARNS[0])))
    cases.append(("other source", "my.app", "ECS Task State Change", running))
    cases.append(("container instance event", "aws.ecs", "ECS Container Instance State Change",
                  {"clusterArn": running["clusterArn"], "status": "ACTIVE", "agentConnected": True}))
    cases.append(("service action", "aws.ecs", "ECS Service Action", {"clusterArn": running["clusterArn"], "eventName": "SERVICE_STEADY_STATE"}))
    report = {"schemaVersion": 1, "taskArn": running["taskArn"], "clusterArn": running["clusterArn"], "family": "web-soci",
              "revision": 12, "containers": [{"name": "app", "snapshotter": "soci"}]}
    cases.append(("image report", REPORT_SOURCE, REPORT_TYPE, report))
    cases.append(("image report of cluster other", REPORT_SOURCE, REPORT_TYPE, dict(report, clusterArn=f"{arn}/other")))
    cases.append(("image report from another source", "my.app", REPORT_TYPE, report))
    cases.append(("other event of the sidecar's source", REPORT_SOURCE, "Something Else", report))
    return cases


def expected_to_match(source, detail_type, detail, all_clusters):
    report = (source, detail_type) == (REPORT_SOURCE, REPORT_TYPE)
    state_change = source == "aws.ecs" and detail_type == "ECS Task State Change" and detail.get("lastStatus") in STATES
    if not (report or state_change):
        return False
    cluster_arn = detail.get("clusterArn", "")
    return all_clusters or cluster_arn in WATCHED_ARNS or cluster_arn.split(":cluster/")[-1] in WATCHED_NAMES


def delivered(aws, parameters):
    cloudformation, events, sqs = aws("cloudformation"), aws("events"), aws("sqs")
    stack = unique("pattern")
    outputs = create_stack(cloudformation, stack, parameters)
    assert not events.list_targets_by_rule(Rule=outputs["RuleName"])["Targets"], "no target before the functions exist"
    queue_url = sqs.create_queue(QueueName=unique("observe"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_targets(Rule=outputs["RuleName"], Targets=[{"Id": "observe", "Arn": queue_arn}])
    cases = variants()
    entries = [{"Source": source or "unknown", "DetailType": detail_type or "unknown",
                "Detail": json.dumps(dict(detail, testCase=case)), "Resources": []}
               for case, source, detail_type, detail in cases]
    for start in range(0, len(entries), 10):
        answer = events.put_events(Entries=entries[start:start + 10])
        assert answer["FailedEntryCount"] == 0, answer
    arrived = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            arrived.append(json.loads(message["Body"])["detail"]["testCase"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    cloudformation.delete_stack(StackName=stack)
    for table in (outputs["TasksTableName"], outputs["RollupTableName"]):
        aws("dynamodb").delete_table(TableName=table)  # Retain keeps them; these are throwaway copies
    return cases, arrived


def test_only_task_state_changes_of_watched_clusters_in_captured_states_match(aws):
    names_and_arns = ",".join(WATCHED_NAMES + WATCHED_ARNS)
    cases, arrived = delivered(aws, {"Clusters": names_and_arns})
    expected = [case for case, source, kind, detail in cases if expected_to_match(source, kind, detail, all_clusters=False)]
    assert sorted(arrived) == sorted(expected)
    # The proof is only as good as its cases: both outcomes, both ways of naming a cluster.
    assert {"web-soci-running.json", "failed-to-start.json", "ec2-old-arn-running.json", "batch by ARN", "image report"} <= set(expected)
    assert {"cluster preprod-shop-prod", "batch in another account", "state PENDING", "other source",
            "container instance event", "not-an-ecs-event.json", "image report of cluster other",
            "image report from another source", "other event of the sidecar's source"}.isdisjoint(arrived)
    print(f"\n{len(cases)} events published, {len(arrived)} matched the rule: {sorted(arrived)}")


def test_without_clusters_every_cluster_matches(aws):
    cases, arrived = delivered(aws, {"Clusters": ""})
    expected = [case for case, source, kind, detail in cases if expected_to_match(source, kind, detail, all_clusters=True)]
    assert sorted(arrived) == sorted(expected)
    assert "cluster other" in arrived and "state STOPPING" not in arrived


@pytest.mark.skipif(not (ROOT.parent / "shared" / "ecs-events").is_dir(), reason="../shared/ecs-events is not beside the project")
def test_the_published_samples_were_included():
    names = {path.name for path in SAMPLES}
    assert any(Path(ROOT.parent / "shared" / "ecs-events" / name).exists() for name in names)
