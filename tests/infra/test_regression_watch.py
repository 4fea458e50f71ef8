"""The regression watch: an hourly schedule has task-summary judge every family's newest revision against
the one before and publish `StartupRegression` ({"query":"regressions","publish":true}), one alarm watches
the metric without dimensions, and a dashboard widget shows it per family.

Deployed into the local stack in `make deploy`'s order (tools/deploy.py) without building anything: the
stack with FunctionsDeployed=false, stand-ins for the three functions with the stack's roles (moto never
runs them), then the stack again with both flags true. `test_deploy.py` deploys the real functions.
moto's CloudFormation skips AWS::CloudWatch::Alarm: the alarm is checked on the template itself."""
import importlib.util
import io
import json
import zipfile

import pytest

from conftest import ROOT, TEMPLATE, create_stack, unique, wait_for_stack

PAYLOAD = '{"query":"regressions","publish":true}'
NAMESPACE = "Shop/TaskTiming"  # not the default: the namespace must reach the widget as given
QUERY = f'SELECT MAX(StartupRegression) FROM SCHEMA("{NAMESPACE}", TaskFamily) GROUP BY TaskFamily'
WIDGET = "Start-up regressions by family (newest revision against the one before, hourly)"
FUNCTIONS = ("task-events", "task-summary", "task-rollups")


def update_stack(cloudformation, name, parameters):
    """As tools/deploy.py's update: the given parameters, the others at their current values."""
    current = {p["ParameterKey"]: p["ParameterValue"] for p in cloudformation.describe_stacks(StackName=name)["Stacks"][0]["Parameters"]}
    cloudformation.update_stack(
        StackName=name,
        TemplateBody=TEMPLATE.read_text(encoding="utf-8"),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in dict(current, **parameters).items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    wait_for_stack(cloudformation, name, "UPDATE_COMPLETE")


def stand_ins(aws, stack, outputs):
    """The three functions as `cargo lambda deploy` names them, with the stack's roles (never invoked)."""
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("bootstrap", "#!/bin/sh\n")
    roles = {"task-events": outputs["TaskEventsRoleArn"], "task-summary": outputs["TaskSummaryRoleArn"],
             "task-rollups": outputs["TaskRollupsRoleArn"]}
    for binary in FUNCTIONS:
        aws("lambda").create_function(FunctionName=f"{stack}-{binary}", Runtime="provided.al2023", Handler="bootstrap",
                                      Role=roles[binary], Code={"ZipFile": code.getvalue()}, Architectures=["arm64"])


def deploy(aws, parameters):
    """(stack, outputs, the rule's targets before the functions existed)."""
    cloudformation, events = aws("cloudformation"), aws("events")
    stack = unique("watch")
    outputs = create_stack(cloudformation, stack, parameters)
    try:
        before = None
        if parameters.get("RegressionWatchSchedule", "rate(1 hour)"):
            before = events.list_targets_by_rule(Rule=f"{stack}-regression-watch")["Targets"]
        stand_ins(aws, stack, outputs)
        update_stack(cloudformation, stack, {"FunctionsDeployed": "true", "RollupsDeployed": "true"})
    except BaseException:
        remove(aws, stack, outputs)
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}
    return stack, outputs, before


def remove(aws, stack, outputs):
    """Everything deploy made. Never leave a wired schedule behind: moto 5.2.5 hands every PutEvents on the
    default bus to a rule without a pattern, and fails it (500) on a Lambda target, so the event tests would."""
    lambda_client = aws("lambda")
    for binary in FUNCTIONS:
        try:
            lambda_client.delete_function(FunctionName=f"{stack}-{binary}")
        except lambda_client.exceptions.ResourceNotFoundException:
            pass
    aws("cloudformation").delete_stack(StackName=stack)
    for table in (outputs["TasksTableName"], outputs["RollupTableName"]):
        aws("dynamodb").delete_table(TableName=table)  # Retain keeps them; these are throwaway copies


@pytest.fixture(scope="module")
def wired(aws):
    stack, outputs, before = deploy(aws, {"MetricsNamespace": NAMESPACE})
    yield stack, outputs, before
    remove(aws, stack, outputs)


def test_the_watch_invokes_task_summary_hourly_with_the_published_regressions_query(aws, wired):
    stack, outputs, before = wired
    events = aws("events")
    assert before == [], "no target before the functions exist"
    rule = events.describe_rule(Name=f"{stack}-regression-watch")
    assert (rule["ScheduleExpression"], rule["State"]) == ("rate(1 hour)", "ENABLED")
    assert "EventPattern" not in rule
    [target] = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    summary = aws("lambda").get_function(FunctionName=outputs["TaskSummaryFunctionName"])["Configuration"]["FunctionArn"]
    assert target["Arn"] == summary
    assert json.loads(target["Input"]) == {"query": "regressions", "publish": True}
    assert target["Input"] == PAYLOAD
    # The state-change rule still has task-events, and only it.
    assert [t["Id"] for t in events.list_targets_by_rule(Rule=outputs["RuleName"])["Targets"]] == ["task-events"]


def test_only_the_watch_may_invoke_task_summary(aws, wired):
    stack, outputs, _ = wired
    rule_arn = aws("events").describe_rule(Name=f"{stack}-regression-watch")["Arn"]
    [statement] = json.loads(aws("lambda").get_policy(FunctionName=outputs["TaskSummaryFunctionName"])["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "lambda:InvokeFunction"
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == rule_arn
    assert statement["Condition"]["StringEquals"]["AWS:SourceAccount"] == rule_arn.split(":")[4]


def test_the_dashboard_shows_regressions_by_family_hourly(aws, wired):
    stack, outputs, _ = wired
    body = json.loads(aws("cloudwatch").get_dashboard(DashboardName=outputs["DashboardName"])["DashboardBody"])
    [widget] = [w for w in body["widgets"] if w["properties"].get("title") == WIDGET]
    assert widget["type"] == "metric" and widget["properties"]["period"] == 3600
    [[query]] = widget["properties"]["metrics"]
    assert (query["expression"], query["period"]) == (QUERY, 3600)
    [alarms] = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert any(arn.endswith(f":alarm:{stack}-startup-regression") for arn in alarms["properties"]["alarms"])
    # Nothing overlaps: the widget took the alarms' row, and the alarms moved below it.
    cells = [(x, y) for w in body["widgets"] for x in range(w["x"], w["x"] + w["width"]) for y in range(w["y"], w["y"] + w["height"])]
    assert len(cells) == len(set(cells))


def test_the_alarm_fires_on_any_family_regression_without_dimensions(template):
    alarm = template["Resources"]["StartupRegressionAlarm"]
    assert "Condition" not in alarm
    props = alarm["Properties"]
    assert (props["Namespace"], props["MetricName"], props["Statistic"], props["Period"], props["EvaluationPeriods"]) == \
        ({"Ref": "MetricsNamespace"}, "StartupRegression", "Maximum", 3600, 1)
    assert (props["Threshold"], props["ComparisonOperator"], props["TreatMissingData"]) == \
        (1, "GreaterThanOrEqualToThreshold", "notBreaching")
    assert "Dimensions" not in props and "Metrics" not in props, "task-summary emits it across families too ([])"
    assert props["AlarmActions"] == {"Fn::If": ["HasTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}
    assert props["AlarmName"] == {"Fn::Sub": "${AWS::StackName}-startup-regression"}
    description = props["AlarmDescription"]["Fn::Sub"]
    assert "--data-ascii '{\"query\":\"regressions\",\"format\":\"table\"}'" in description
    assert "${AWS::StackName}-task-summary" in description and "Start-up regressions" in description
    assert len(description) <= 1024


def test_an_empty_schedule_turns_the_watch_off(aws):
    # On a stack created with it. Turning it off later is CloudFormation deleting the resources whose condition
    # turned false; moto 5.2.5 updates them instead (and refuses a rule without a schedule), so not tested here.
    stack, outputs, _ = deploy(aws, {"RegressionWatchSchedule": ""})
    try:
        assert not [r for r in aws("events").list_rules(NamePrefix=stack)["Rules"] if r["Name"].endswith("-regression-watch")]
        with pytest.raises(aws("lambda").exceptions.ResourceNotFoundException):
            aws("lambda").get_policy(FunctionName=outputs["TaskSummaryFunctionName"])
        # The state-change rule is wired as ever.
        assert len(aws("events").list_targets_by_rule(Rule=outputs["RuleName"])["Targets"]) == 1
    finally:
        remove(aws, stack, outputs)


def test_make_deploy_gives_task_summary_the_stacks_metrics_namespace_as_task_events():
    spec = importlib.util.spec_from_file_location("deploy_tool", ROOT / "tools" / "deploy.py")
    deploy_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deploy_tool)

    class NoFunctions:
        class exceptions:
            ResourceNotFoundException = LookupError

        def get_function(self, FunctionName):
            raise LookupError(FunctionName)

    out = {"TasksTableName": "s-tasks", "RollupTableName": "s-rollups", "TaskSummaryFunctionName": "s-task-summary",
           "MetricsNamespace": NAMESPACE, "RetentionDays": "90", "SlowStartupSeconds": "60", "LazyLoadingFamilies": ""}
    env = deploy_tool.environments(out, NoFunctions())
    assert env["task-summary"]["METRICS_NAMESPACE"] == env["task-events"]["METRICS_NAMESPACE"] == NAMESPACE
