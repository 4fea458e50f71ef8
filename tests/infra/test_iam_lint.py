"""Every IAM policy in infra/template.yaml through parliament (duo-labs' IAM linter): no findings.

parliament reads policy documents, not templates: each document's intrinsic functions are resolved to
ARNs of the shape AWS gives the resources (a table's, its stream's, a queue's, a log group's), so the
linter checks actions against resource types as it would on the deployed policy."""
import json
import re

from parliament import analyze_policy_string

ACCOUNT, REGION, STACK = "123456789012", "us-east-1", "ecs-task-timing"
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackName": STACK}


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
        return PSEUDO.get(ref) or str(template.get("Parameters", {}).get(ref, {}).get("Default", ref))
    if "Fn::If" in value:
        # Both branches are policies the stack may hold: lint the wider one (the list).
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
    """(where, document) for every policy the template declares: the roles', the managed one, the queue's."""
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                yield f"{name}/{policy['PolicyName']}", policy["PolicyDocument"]
        elif resource["Type"] == "AWS::IAM::ManagedPolicy":
            yield name, props["PolicyDocument"]
        elif resource["Type"] in ("AWS::SQS::QueuePolicy",):
            yield name, props["PolicyDocument"]


def test_every_policy_in_the_template_passes_parliament(template):
    checked = []
    for where, document in policies(template):
        resolved = resolve(template, document)
        findings = analyze_policy_string(json.dumps(resolved)).findings
        assert not findings, f"{where}: {[str(finding) for finding in findings]}\n{json.dumps(resolved, indent=1)}"
        checked.append(where)
    # Every role of the stack, the sidecar's managed policy and the dead-letter queue's policy.
    assert set(checked) >= {"TaskEventsRole/task-events", "TaskRollupsRole/task-rollups", "TaskSummaryRole/task-summary",
                            "ClockMonitorPolicy", "DeadLetterQueuePolicy"}, checked


def test_parliament_finds_what_it_should():
    # The lint can fail: an action on the wrong resource type, and a made-up action.
    wrong = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "dynamodb:GetRecords", "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"},
        {"Effect": "Allow", "Action": "dynamodb:PutRollup", "Resource": "*"}]}
    issues = {finding.issue for finding in analyze_policy_string(json.dumps(wrong)).findings}
    assert {"RESOURCE_MISMATCH", "UNKNOWN_ACTION"} <= issues, issues
