"""Every IAM policy in infra/template.yaml and infra/member.yaml through parliament (duo-labs' IAM linter):
no findings.

parliament reads policy documents, not templates: each document's intrinsic functions are resolved to
ARNs of the shape AWS gives the resources (a table's, its stream's, a queue's, a log group's, an event
bus's), so the linter checks actions against resource types as it would on the deployed policy. The
parameters a policy names take the values of PARAMETERS (central mode: both kinds of bus statement), the
others their defaults."""
import json
import re

from cfnlint.decode import cfn_yaml
from parliament import analyze_policy_string

from conftest import ROOT

ACCOUNT, REGION, STACK = "123456789012", "us-east-1", "ecs-task-timing"
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackName": STACK}
PARAMETERS = {
    "OrganizationId": "o-a1b2c3d4e5",
    "SourceAccounts": ["111111111111", "222222222222"],
    "CentralEventBusArn": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{STACK}-central",
}


def arn_of(template, name, attribute):
    resource = template["Resources"][name]
    kind, props = resource["Type"], resource.get("Properties", {})
    physical = resolve(template, props.get("TableName") or props.get("QueueName") or props.get("LogGroupName")
                       or props.get("Name") or f"{STACK}-{name}")
    if kind == "AWS::DynamoDB::Table":
        table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{physical}"
        return f"{table}/stream/2026-01-01T00:00:00.000" if attribute == "StreamArn" else table
    if kind == "AWS::SQS::Queue":
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{physical}"
    if kind == "AWS::Logs::LogGroup":
        return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{physical}:*"
    if kind == "AWS::Events::Rule":
        return f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{STACK}-{name}"
    if kind == "AWS::Events::EventBus":
        return f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{physical}"
    raise AssertionError(f"no ARN shape for {kind} ({name}.{attribute})")


def resolve(template, value):
    if isinstance(value, list):
        return [resolve(template, item) for item in value]
    if not isinstance(value, dict):
        return value
    if "Fn::GetAtt" in value:
        name, attribute = value["Fn::GetAtt"]
        return arn_of(template, name, attribute)
    if "Ref" in value:
        ref = value["Ref"]
        if ref in PARAMETERS:
            return PARAMETERS[ref]
        return PSEUDO.get(ref) or str(template.get("Parameters", {}).get(ref, {}).get("Default", ref))
    if "Fn::If" in value:
        # Both branches are policies the stack may hold: lint the wider one (the list), or the one that is
        # there (a statement rather than AWS::NoValue).
        _, then, otherwise = value["Fn::If"]
        return resolve(template, otherwise if isinstance(otherwise, list) else then)
    if "Fn::Sub" in value:
        text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]

        def substitute(match):
            name = match.group(1)
            if name in PSEUDO:
                return PSEUDO[name]
            if "." in name:
                return arn_of(template, *name.split(".", 1))
            return resolve(template, {"Ref": name})

        return re.sub(r"\$\{([^}]+)\}", substitute, text)
    return {key: resolve(template, item) for key, item in value.items()}


def policies(template):
    """(where, document) for every policy the template declares: the roles', the managed ones, the queues', the
    event bus's. (Not the roles' trust policies: parliament wants a Resource in every statement.)"""
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                yield f"{name}/{policy['PolicyName']}", policy["PolicyDocument"]
        elif resource["Type"] == "AWS::IAM::ManagedPolicy":
            yield name, props["PolicyDocument"]
        elif resource["Type"] in ("AWS::SQS::QueuePolicy",):
            yield name, props["PolicyDocument"]
        elif resource["Type"] == "AWS::Events::EventBus" and "Policy" in props:
            yield name, props["Policy"]


def lint(template):
    """The policies parliament checked; fails on any finding."""
    checked = []
    for where, document in policies(template):
        resolved = resolve(template, document)
        findings = analyze_policy_string(json.dumps(resolved)).findings
        assert not findings, f"{where}: {[str(finding) for finding in findings]}\n{json.dumps(resolved, indent=1)}"
        checked.append(where)
    return checked


def test_every_policy_in_the_template_passes_parliament(template):
    checked = lint(template)
    # Every role of the stack, the sidecar's managed policy, the dead-letter queue's policy and the central
    # bus's resource policy (central mode).
    assert set(checked) >= {"TaskEventsRole/task-events", "TaskRollupsRole/task-rollups", "TaskSummaryRole/task-summary",
                            "ClockMonitorPolicy", "DeadLetterQueuePolicy", "CentralEventBus"}, checked


def test_the_central_bus_policy_is_linted_with_both_statements(template):
    [(_, document)] = [(where, doc) for where, doc in policies(template) if where == "CentralEventBus"]
    resolved = resolve(template, document)
    assert [statement["Sid"] for statement in resolved["Statement"]] == ["OrganizationPutEvents", "AccountsPutEvents"]
    bus = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{STACK}-central"
    assert {statement["Resource"] for statement in resolved["Statement"]} == {bus}


def test_every_policy_in_the_member_template_passes_parliament():
    member = cfn_yaml.load(str(ROOT / "infra" / "member.yaml"))
    checked = lint(member)
    # The forwarding role's one policy, the sidecar's managed policy, the dead-letter queue's.
    assert set(checked) == {"ForwardRole/put-events-on-the-central-bus", "SidecarPolicy",
                            "DeadLetterQueuePolicy"}, checked


def test_parliament_finds_what_it_should():
    # The lint can fail: an action on the wrong resource type, and a made-up action; PutEvents on anything
    # but an event bus (a member role pointed at a queue).
    wrong = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:GetRecords", "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"},
        {"Effect": "Allow", "Action": "dynamodb:PutRollup", "Resource": "*"}]}
    issues = {finding.issue for finding in analyze_policy_string(json.dumps(wrong)).findings}
    assert {"RESOURCE_MISMATCH", "UNKNOWN_ACTION"} <= issues, issues
    not_a_bus = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "events:PutEvents", "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"}]}
    issues = {finding.issue for finding in analyze_policy_string(json.dumps(not_a_bus)).findings}
    assert "RESOURCE_MISMATCH" in issues, issues
