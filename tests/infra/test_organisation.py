"""Organisation mode (docs/organisation.md) against the local stack: the central stack's bus, its policy and
the rule and archive on it; the member stack (infra/member.yaml) in another moto account forwarding its ECS
task events and the sidecar's reports to the central bus; `make deploy-member`; and, with the full local
stack, a forwarded event through task-events into the tasks table.

moto 5.2.5 picks a request's account from the `x-moto-account-id` header (`as_account`), and delivers an
event-bus target across accounts, but not as EventBridge does:
- it re-puts the event as the central account's own: only source, detail-type and detail survive; account,
  region, time, id and resources become the central bus's (and its SQS delivery leaves `account` out of the
  envelope altogether). EventBridge keeps the member's envelope. So a rule that filters on `account` cannot be
  shown on forwarded events here, and the end-to-end test restores the member's envelope before task-events;
- it never evaluates the bus's resource policy, nor the member role's: what the policy admits is checked on
  the document moto keeps (`admits`, a model of IAM's evaluation for the two statement shapes the template
  writes), and the role's policy on what IAM keeps;
- it ignores the target's RoleArn, RetryPolicy and DeadLetterConfig (kept and read back, not exercised), and
  its CloudFormation skips alarms and queue policies (checked on the template).
"""
import ast
import json
import os
import subprocess
import uuid

import boto3
import pytest
from cfnlint.decode import cfn_yaml

from conftest import ROOT, create_stack, drain, invoke_task_events, make, unique, wait_for_stack

MEMBER_TEMPLATE = ROOT / "infra" / "member.yaml"
FIXTURES = ROOT / "fixtures" / "events"
REGION = os.environ.get("AWS_REGION", "us-east-1")
ORG = "o-a1b2c3d4e5"
MEMBER, OUTSIDER, LISTED = "111111111111", "222222222222", "333333333333"
REPORT_SOURCE, REPORT_TYPE = "ecs-task-timing.sidecar", "ECS Task Image Report"


def as_account(account, service):
    """A client of the local stack acting as `account` (moto's x-moto-account-id header)."""
    client = boto3.session.Session().client(service, endpoint_url=os.environ["AWS_ENDPOINT_URL"])

    def add_header(request, **_):
        request.headers["x-moto-account-id"] = account

    client.meta.events.register("before-sign.*.*", add_header)
    return client


@pytest.fixture(scope="module")
def central_account(aws):
    return aws("sts").get_caller_identity()["Account"]


def state_change(account, status="RUNNING", task_id=None):
    """The project's fixture of that status, as a task of `account` in this region."""
    name = {"RUNNING": "web-soci-running.json", "STOPPED": "web-soci-stopped.json"}[status]
    text = (FIXTURES / name).read_text(encoding="utf-8").replace("arn:aws:ecs:eu-west-1:123456789012:", f"arn:aws:ecs:{REGION}:{account}:")
    event = json.loads(text)
    event["account"], event["region"] = account, REGION
    task_id = task_id or uuid.uuid4().hex
    event["detail"]["taskArn"] = event["detail"]["taskArn"].rsplit("/", 1)[0] + "/" + task_id
    event["resources"] = [event["detail"]["taskArn"]]
    return event


def image_report(task_arn):
    cluster = task_arn.replace(":task/", ":cluster/").rsplit("/", 1)[0]
    return {"source": REPORT_SOURCE, "detail-type": REPORT_TYPE, "detail": {
        "schemaVersion": 2, "taskArn": task_arn, "clusterArn": cluster, "family": "checkout-soci", "revision": 14,
        "containers": [{"name": "checkout", "snapshotter": "soci"}]}}


def put(events_client, event, bus="default"):
    answer = events_client.put_events(Entries=[{
        "Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"]),
        "Resources": event.get("resources", []), "EventBusName": bus}])
    assert answer["FailedEntryCount"] == 0, answer


def observer(aws, rule, bus):
    """An SQS queue added to the central rule as a second target: what the rule delivers."""
    sqs = aws("sqs")
    queue_url = sqs.create_queue(QueueName=unique("central-observe"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws("events").put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "observe", "Arn": queue_arn}])
    return queue_url


def bus_name(arn):
    return arn.rsplit("/", 1)[1]


def remove(aws, name, outputs):
    aws("cloudformation").delete_stack(StackName=name)
    for table in (outputs["TasksTableName"], outputs["RollupTableName"]):
        aws("dynamodb").delete_table(TableName=table)  # Retain keeps them; these are throwaway copies


def create_member(cloudformation, name, parameters):
    cloudformation.create_stack(
        StackName=name, TemplateBody=MEMBER_TEMPLATE.read_text(encoding="utf-8"), Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
    wait_for_stack(cloudformation, name, "CREATE_COMPLETE")
    return {o["OutputKey"]: o["OutputValue"] for o in cloudformation.describe_stacks(StackName=name)["Stacks"][0]["Outputs"]}


def admits(policy, account, organization=None):
    """Whether the bus policy lets `account` (in `organization`, or in none) put events on the bus: IAM's
    evaluation for the statement shapes infra/template.yaml writes (Allow PutEvents on the bus; Principal "*"
    with aws:PrincipalOrgID, or account ids), failing on any other shape rather than guessing."""
    admitted = False
    for statement in policy["Statement"]:
        assert (statement["Effect"], statement["Action"]) == ("Allow", "events:PutEvents"), statement
        principal, condition = statement["Principal"], statement.get("Condition")
        if principal == "*":
            assert isinstance(condition, dict) and list(condition) == ["StringEquals"], statement
            assert list(condition["StringEquals"]) == ["aws:PrincipalOrgID"], statement
            admitted |= organization is not None and organization == condition["StringEquals"]["aws:PrincipalOrgID"]
        else:
            assert condition is None and list(principal) == ["AWS"], statement
            listed = principal["AWS"] if isinstance(principal["AWS"], list) else [principal["AWS"]]
            admitted |= account in listed or f"arn:aws:iam::{account}:root" in listed
    return admitted


def policy_of(aws, bus):
    return json.loads(aws("events").describe_event_bus(Name=bus)["Policy"])


@pytest.fixture(scope="module")
def central(aws):
    """The central stack in organisation mode (watching cluster shop-prod), with an observer on its rule."""
    name = unique("central")
    outputs = create_stack(aws("cloudformation"), name, {"OrganizationId": ORG, "Clusters": "shop-prod"})
    queue_url = observer(aws, outputs["RuleName"], bus_name(outputs["EventBusArn"]))
    yield name, outputs, queue_url
    remove(aws, name, outputs)


@pytest.fixture(scope="module")
def member(central):
    """The member stack in account MEMBER, forwarding to the central bus."""
    _, central_outputs, _ = central
    cloudformation = as_account(MEMBER, "cloudformation")
    name = unique("member")
    outputs = create_member(cloudformation, name, {"CentralEventBusArn": central_outputs["EventBusArn"]})
    yield outputs
    cloudformation.delete_stack(StackName=name)


# --- the central stack ---------------------------------------------------------------------------------------

def test_single_account_mode_is_the_default_and_has_no_bus(aws, template):
    # The template: only the bus is central-mode only, and every changed property falls back to today's value.
    central_only = sorted(name for name, r in template["Resources"].items() if r.get("Condition") == "Central")
    assert central_only == ["CentralEventBus"]
    assert template["Parameters"]["OrganizationId"]["Default"] == template["Parameters"]["SourceAccounts"]["Default"] == ""
    assert template["Resources"]["TaskStateChangeRule"]["Properties"]["EventBusName"]["Fn::If"][2] == "default"
    assert template["Outputs"]["EventBusArn"]["Condition"] == "Central"
    # The stack: the rule and the archive on the default bus, no bus of its own, no account filter.
    name = unique("single")
    outputs = create_stack(aws("cloudformation"), name, {})
    try:
        resources = {r["LogicalResourceId"] for r in aws("cloudformation").list_stack_resources(StackName=name)["StackResourceSummaries"]}
        assert "CentralEventBus" not in resources and "TaskStateChangeRule" in resources
        assert "EventBusArn" not in outputs
        rule = aws("events").describe_rule(Name=outputs["RuleName"])
        assert rule["EventBusName"] == "default" and rule["Arn"] == outputs["RuleArn"]
        assert outputs["RuleArn"].endswith(f":rule/{name}-task-state-change")
        assert "account" not in json.loads(rule["EventPattern"])
        archive = aws("events").describe_archive(ArchiveName=outputs["ArchiveArn"].rsplit("/", 1)[1])
        assert archive["EventSourceArn"] == f"arn:aws:events:{REGION}:{outputs['RuleArn'].split(':')[4]}:event-bus/default"
        assert not [b for b in aws("events").list_event_buses(NamePrefix=name)["EventBuses"]]
    finally:
        remove(aws, name, outputs)


def test_central_mode_puts_the_rule_and_the_archive_on_a_bus_that_admits_the_organisation(aws, central, central_account):
    name, outputs, _ = central
    bus_arn = f"arn:aws:events:{REGION}:{central_account}:event-bus/{name}-central"
    assert outputs["EventBusArn"] == bus_arn
    assert policy_of(aws, f"{name}-central") == {"Version": "2012-10-17", "Statement": [{
        "Sid": "OrganizationPutEvents", "Effect": "Allow", "Principal": "*", "Action": "events:PutEvents",
        "Resource": bus_arn, "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}}}]}
    events = aws("events")
    rule = events.describe_rule(Name=outputs["RuleName"], EventBusName=f"{name}-central")
    assert outputs["RuleName"] == f"{name}-task-state-change"
    assert rule["EventBusName"] == f"{name}-central" and rule["Arn"] == outputs["RuleArn"]
    pattern = json.loads(rule["EventPattern"])
    assert "account" not in pattern, "the organisation: the policy decides, the rule takes every member"
    assert {"suffix": ":cluster/shop-prod"} in pattern["$or"][0]["detail"]["clusterArn"], "everything else as today"
    archive = events.describe_archive(ArchiveName=outputs["ArchiveArn"].rsplit("/", 1)[1])
    assert archive["EventSourceArn"] == bus_arn
    assert json.loads(archive["EventPattern"]) == pattern
    # Nothing of the rule is left on the default bus.
    assert outputs["RuleName"] not in {r["Name"] for r in events.list_rules(NamePrefix=name)["Rules"]}


@pytest.mark.parametrize("parameters, sids, account_filter", [
    ({"SourceAccounts": f"{MEMBER},{LISTED}"}, ["AccountsPutEvents"], [MEMBER, LISTED]),
    ({"SourceAccounts": f"{MEMBER},{LISTED}", "OrganizationId": ORG}, ["OrganizationPutEvents", "AccountsPutEvents"], None),
], ids=["accounts", "organisation and accounts"])
def test_listed_accounts_get_one_statement_with_exactly_those_accounts(aws, central_account, parameters, sids, account_filter):
    name = unique("accounts")
    outputs = create_stack(aws("cloudformation"), name, parameters)
    try:
        bus_arn = f"arn:aws:events:{REGION}:{central_account}:event-bus/{name}-central"
        policy = policy_of(aws, f"{name}-central")
        assert [s["Sid"] for s in policy["Statement"]] == sids
        [accounts] = [s for s in policy["Statement"] if s["Sid"] == "AccountsPutEvents"]
        assert accounts == {"Sid": "AccountsPutEvents", "Effect": "Allow", "Principal": {"AWS": [MEMBER, LISTED]},
                            "Action": "events:PutEvents", "Resource": bus_arn}
        pattern = json.loads(aws("events").describe_rule(Name=outputs["RuleName"], EventBusName=f"{name}-central")["EventPattern"])
        # With the accounts alone the rule names them too; with the organisation it cannot (members unlisted).
        assert pattern.get("account") == account_filter
        assert len(pattern["$or"]) == 2
    finally:
        remove(aws, name, outputs)


def test_the_bus_policy_admits_the_organisation_and_the_listed_accounts_and_no_one_else(aws, central):
    name, _, _ = central
    organisation = policy_of(aws, f"{name}-central")
    assert admits(organisation, MEMBER, ORG)
    assert not admits(organisation, OUTSIDER), "an account in no organisation"
    assert not admits(organisation, OUTSIDER, "o-zzzzzzzzzz"), "an account of another organisation"
    listed = {"Version": "2012-10-17", "Statement": [{"Sid": "AccountsPutEvents", "Effect": "Allow",
              "Principal": {"AWS": [MEMBER, LISTED]}, "Action": "events:PutEvents", "Resource": "arn"}]}
    assert admits(listed, LISTED) and not admits(listed, OUTSIDER, ORG)
    # The model can say yes to the wrong account: a Principal "*" without the condition is refused outright.
    with pytest.raises(AssertionError):
        admits({"Statement": [dict(organisation["Statement"][0], Condition=None)]}, OUTSIDER)


@pytest.mark.parametrize("listed, delivered", [([MEMBER], False), ([MEMBER, "central"], True)],
                         ids=["this account not listed", "this account listed"])
def test_with_source_accounts_alone_the_rule_takes_only_their_events(aws, central_account, listed, delivered):
    # The central account's own principals may always put events on its bus (IAM, not the bus policy):
    # the account filter in the rule's pattern is what keeps them out unless SourceAccounts lists it.
    accounts = [central_account if a == "central" else a for a in listed]
    name = unique("filter")
    outputs = create_stack(aws("cloudformation"), name, {"SourceAccounts": ",".join(accounts)})
    try:
        queue_url = observer(aws, outputs["RuleName"], f"{name}-central")
        event = state_change(central_account)
        put(aws("events"), event, bus=f"{name}-central")
        arrived = [e["detail"]["taskArn"] for e in drain(aws, queue_url, 1.0)]
        assert arrived == ([event["detail"]["taskArn"]] if delivered else [])
    finally:
        remove(aws, name, outputs)


def test_make_replay_replays_the_central_archive_into_the_central_rule(aws, central, central_account):
    name, outputs, queue_url = central
    drain(aws, queue_url, wait=0.2)
    event = state_change(central_account)
    put(aws("events"), event, bus=f"{name}-central")
    assert [e["detail"]["taskArn"] for e in drain(aws, queue_url, 1.0)] == [event["detail"]["taskArn"]]
    make("replay", f"STACK_NAME={name}", "FROM=2026-01-01T00:00:00Z", "TO=2099-01-01T00:00:00Z")
    [replay] = aws("events").list_replays(EventSourceArn=outputs["ArchiveArn"])["Replays"]
    described = aws("events").describe_replay(ReplayName=replay["ReplayName"])
    assert described["Destination"] == {"Arn": outputs["EventBusArn"], "FilterArns": [outputs["RuleArn"]]}
    # moto replays every archived event (the module's earlier ones too), each marked as replayed.
    replayed = drain(aws, queue_url, 1.0)
    assert event["detail"]["taskArn"] in [e["detail"]["taskArn"] for e in replayed]
    assert {e.get("replay-name") for e in replayed} == {replay["ReplayName"]}


# --- the member stack ----------------------------------------------------------------------------------------

def test_the_member_rule_forwards_both_kinds_to_the_central_bus_with_its_role_retries_and_dead_letters(central, member):
    _, central_outputs, _ = central
    events, iam = as_account(MEMBER, "events"), as_account(MEMBER, "iam")
    rule = events.describe_rule(Name=member["RuleName"])
    assert rule["EventBusName"] == "default" and rule["Arn"] == member["RuleArn"]
    assert member["RuleArn"].split(":")[4] == MEMBER
    assert json.loads(rule["EventPattern"]) == {"$or": [
        {"source": ["aws.ecs"], "detail-type": ["ECS Task State Change"], "detail": {"lastStatus": ["RUNNING", "STOPPED"]}},
        {"source": [REPORT_SOURCE], "detail-type": [REPORT_TYPE]}]}
    [target] = events.list_targets_by_rule(Rule=member["RuleName"])["Targets"]
    assert target["Arn"] == central_outputs["EventBusArn"] and target["RoleArn"] == member["RoleArn"]
    assert target["DeadLetterConfig"] == {"Arn": member["DeadLetterQueueArn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
    assert member["DeadLetterQueueArn"].split(":")[4] == MEMBER
    # The role: EventBridge of this account may assume it, and it may put events on the central bus alone.
    role_name = member["RoleArn"].rsplit("/", 1)[1]
    trust = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    assert trust["Statement"] == [{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole",
                                   "Condition": {"StringEquals": {"aws:SourceAccount": MEMBER}}}]
    [policy_name] = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role_name, PolicyName=policy_name)["PolicyDocument"]
    # moto returns an inline policy created by CloudFormation as the repr of a dict (as test_deploy.py reads it).
    document = ast.literal_eval(document) if isinstance(document, str) else document
    assert document["Statement"] == [{"Sid": "CentralBus", "Effect": "Allow", "Action": "events:PutEvents",
                                      "Resource": central_outputs["EventBusArn"]}]


def test_the_member_template_keeps_what_moto_skips():
    # moto's CloudFormation skips queue policies and alarms: the dead-letter queue admits this rule alone,
    # is encrypted, and its alarm fires on one message.
    member = cfn_yaml.load(str(MEMBER_TEMPLATE))["Resources"]
    [statement] = member["DeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (statement["Principal"], statement["Action"]) == ({"Service": "events.amazonaws.com"}, "sqs:SendMessage")
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ForwardRule", "Arn"]}}}
    assert member["DeadLetterQueue"]["Properties"]["SqsManagedSseEnabled"] is True
    alarm = member["DeadLetterAlarm"]["Properties"]
    assert (alarm["MetricName"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "ApproximateNumberOfMessagesVisible", 0, "GreaterThanThreshold")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    assert not any("Name" in r.get("Properties", {}) for r in member.values()), "no fixed names: StackSets"


def test_a_members_task_events_and_reports_arrive_at_the_central_rule_and_nothing_else(aws, central, member):
    _, _, queue_url = central
    drain(aws, queue_url, wait=0.2)
    member_events, outsider_events = as_account(MEMBER, "events"), as_account(OUTSIDER, "events")
    running = state_change(MEMBER)
    stopped = state_change(MEMBER, "STOPPED", task_id=running["detail"]["taskArn"].rsplit("/", 1)[1])
    report = image_report(running["detail"]["taskArn"])
    other_source = dict(state_change(MEMBER), source="my.app")
    pending = state_change(MEMBER)
    pending["detail"]["lastStatus"] = "PENDING"
    other_cluster = state_change(MEMBER)
    other_cluster["detail"]["clusterArn"] = other_cluster["detail"]["clusterArn"].replace("/shop-prod", "/other")
    other_cluster["detail"]["taskArn"] = other_cluster["detail"]["taskArn"].replace("/shop-prod/", "/other/")
    for event in (running, stopped, report, other_source, pending, other_cluster):
        put(member_events, event)
    # A third account with no member stack: its events stay on its own bus.
    from_outsider = state_change(OUTSIDER)
    put(outsider_events, from_outsider)

    arrived = drain(aws, queue_url, 1.0)
    assert [(e["source"], e["detail-type"], e["detail"]) for e in arrived] == [
        (e["source"], e["detail-type"], e["detail"]) for e in (running, stopped, report)], "the detail intact, in order"
    assert all(e["detail"]["taskArn"].split(":")[4] == MEMBER for e in arrived)
    # moto re-puts a forwarded event as the central account's own (EventBridge keeps the member's envelope):
    # the SQS delivery has no account and the central bus's region and time.
    assert all("account" not in e and e["region"] == REGION for e in arrived)


def test_make_deploy_member_forwards_the_central_accounts_own_tasks(aws, central, central_account):
    # The central account's own ECS tasks publish on its default bus: a member stack there forwards them too.
    _, central_outputs, queue_url = central
    name = unique("own-member")
    make("deploy-member", f"MEMBER_STACK_NAME={name}", f"CENTRAL_BUS_ARN={central_outputs['EventBusArn']}")
    try:
        drain(aws, queue_url, wait=0.2)
        running = state_change(central_account)
        put(aws("events"), running)
        arrived = drain(aws, queue_url, 1.0)
        assert [e["detail"]["taskArn"] for e in arrived] == [running["detail"]["taskArn"]]
        # A second deploy updates in place: the states given change the pattern, the bus given before is kept.
        make("deploy-member", f"MEMBER_STACK_NAME={name}", "PARAMS=CaptureStates=STOPPED")
        described = aws("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
        parameters = {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}
        assert (parameters["CentralEventBusArn"], parameters["CaptureStates"]) == (central_outputs["EventBusArn"], "STOPPED")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
        pattern = json.loads(aws("events").describe_rule(Name=outputs["RuleName"])["EventPattern"])
        assert pattern["$or"][0]["detail"]["lastStatus"] == ["STOPPED"]
        put(aws("events"), state_change(central_account))  # RUNNING: no longer forwarded
        assert drain(aws, queue_url, 1.0) == []
    finally:
        make("destroy-member", f"MEMBER_STACK_NAME={name}")
    assert not [s for s in aws("cloudformation").list_stacks()["StackSummaries"]
                if s["StackName"] == name and s["StackStatus"] != "DELETE_COMPLETE"]


# --- through task-events (the full local stack: `make test`) -------------------------------------------------

needs_the_function = pytest.mark.skipif(not os.environ.get("LAMBDA_INVOKE_PORT"),
                                        reason="needs task-events under cargo lambda watch (the full local stack, LAMBDA_INVOKE_PORT)")


def record(aws, task_arn):
    return aws("dynamodb").get_item(TableName=os.environ["TABLE_NAME"], Key={"taskArn": {"S": task_arn}},
                                    ConsistentRead=True).get("Item")


def as_the_member_sent_it(delivered):
    """The delivered event with the member's envelope back: EventBridge keeps the account and region of the
    account that put the event on its bus; moto's forwarding replaces them with the central bus's (and its SQS
    delivery drops `account`)."""
    return dict(delivered, account=MEMBER, region=REGION)


@needs_the_function
def test_a_forwarded_event_reaches_task_events_and_its_record_names_the_member(aws, central, member):
    _, _, queue_url = central
    drain(aws, queue_url, wait=0.2)
    running = state_change(MEMBER)
    task_arn = running["detail"]["taskArn"]
    put(as_account(MEMBER, "events"), running)
    put(as_account(MEMBER, "events"), image_report(task_arn))
    delivered_event, delivered_report = drain(aws, queue_url, 1.0)

    answer = invoke_task_events(as_the_member_sent_it(delivered_event))
    assert (answer["outcome"], answer["taskArn"]) == ("written", task_arn), answer
    answer = invoke_task_events(as_the_member_sent_it(delivered_report))
    assert (answer["outcome"], answer["snapshotter"]) == ("written", "soci"), answer

    item = record(aws, task_arn)
    assert item is not None, f"no record for {task_arn} in {os.environ['TABLE_NAME']}"
    # The stored form leaves out an account and region equal to what the task ARN says (docs/records-and-
    # metrics.md, "Stored form"); any other value, none included (moto's envelope as delivered), is stored.
    assert item.get("account", {"S": MEMBER}) == {"S": MEMBER} and item.get("region", {"S": REGION}) == {"S": REGION}, item
    assert (item["family"]["S"], item["clusterName"]["S"]) == ("checkout-soci", "shop-prod"), item
    assert item.get("ls", item.get("lastStatus")) == {"S": "RUNNING"}, item
    assert item["snapshotter"] == {"S": "soci"}, item


@needs_the_function
def test_task_events_refuses_a_task_of_another_account_than_the_envelopes(aws, central, member):
    # Every member may put on the central bus: an envelope of OUTSIDER naming MEMBER's task is not recorded.
    running = state_change(MEMBER)
    forged = dict(running, account=OUTSIDER)
    answer = subprocess.run(["cargo", "lambda", "invoke", "task-events", "--invoke-address", "127.0.0.1",
                             "--invoke-port", os.environ["LAMBDA_INVOKE_PORT"], "--data-ascii", json.dumps(forged)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert answer.returncode != 0, answer.stdout
    assert "an account reports only its own tasks" in answer.stdout + answer.stderr, answer.stderr
    assert record(aws, running["detail"]["taskArn"]) is None
    # The same event from the task's own account is written: the refusal was the account's, nothing else.
    answer = invoke_task_events(running)
    assert (answer["outcome"], answer["taskArn"]) == ("written", running["detail"]["taskArn"]), answer
    assert record(aws, running["detail"]["taskArn"]) is not None
