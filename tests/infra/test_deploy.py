"""`make deploy`, `make deploy` again with changes, and `make destroy`, against the local stack: the
same steps a user runs against AWS (cargo lambda build and deploy included), then the resources and
their key settings read back from the services.

moto's CloudFormation skips AWS::CloudWatch::Alarm and AWS::SQS::QueuePolicy, and does not apply a
table's TTL, point-in-time recovery or encryption settings; those are checked on the template itself
(test_template_*)."""
import ast
import json
import os
import subprocess

import pytest

from conftest import ROOT, make, unique

SYSROOT = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True, check=True).stdout.strip()
# As tools/deploy.sh: arm64 where the aarch64 target is installed; otherwise x86_64, said in the output.
ARCH = "arm64" if os.path.isdir(f"{SYSROOT}/lib/rustlib/aarch64-unknown-linux-gnu") else "x86_64"
OUTPUT_KEYS = {
    "TasksTableName", "TasksTableArn", "RollupTableName", "RollupTableArn", "DeadLetterQueueUrl", "DeadLetterQueueArn",
    "RuleName", "RuleArn", "TaskEventsFunctionName", "TaskSummaryFunctionName", "TaskEventsRoleArn", "TaskSummaryRoleArn",
    "TaskEventsLogGroupName", "TaskSummaryLogGroupName", "ClockMonitorPolicyArn", "DashboardName", "MetricsNamespace",
    "RetentionDays", "SlowStartupSeconds", "TaskRollupsFunctionName", "TaskRollupsRoleArn", "TaskRollupsLogGroupName",
    "TasksStreamArn", "StreamFailureQueueUrl", "LazyLoadingFamilies", "ArchiveArn",
}


@pytest.fixture(scope="module")
def deployed(aws):
    stack = unique("deploy")
    if ARCH != "arm64":
        print("\nthe aarch64 target is not installed here: deploying x86_64 bootstraps (make deploy ARCH=x86_64)")
    make("deploy", f"STACK_NAME={stack}", f"ARCH={ARCH}", "PARAMS=Clusters=shop-prod,batch StartupP90AlarmSeconds=45 LazyLoadingFamilies=checkout-soci")
    yield stack
    make("destroy", f"STACK_NAME={stack}", "DELETE_TABLES=1")


def outputs_of(aws, stack):
    described = aws("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    return described["StackStatus"], {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}


def test_first_deploy_creates_everything_and_wires_the_rule_last(aws, deployed):
    status, out = outputs_of(aws, deployed)
    assert status in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    assert set(out) == OUTPUT_KEYS
    assert out["TasksTableName"] == f"{deployed}-tasks" and out["TaskEventsFunctionName"] == f"{deployed}-task-events"
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in aws("cloudformation").describe_stacks(StackName=deployed)["Stacks"][0]["Parameters"]}
    assert parameters["FunctionsDeployed"] == parameters["RollupsDeployed"] == "true"

    events = aws("events")
    # One rule for both kinds: ECS's state changes, and the sidecar's image reports.
    state_changes, reports = json.loads(events.describe_rule(Name=out["RuleName"])["EventPattern"])["$or"]
    pattern = state_changes
    assert pattern["source"] == ["aws.ecs"] and pattern["detail-type"] == ["ECS Task State Change"]
    assert pattern["detail"]["lastStatus"] == ["RUNNING", "STOPPED"]
    assert {"suffix": ":cluster/shop-prod"} in pattern["detail"]["clusterArn"]
    [target] = events.list_targets_by_rule(Rule=out["RuleName"])["Targets"]
    function_arn = aws("lambda").get_function(FunctionName=out["TaskEventsFunctionName"])["Configuration"]["FunctionArn"]
    assert target["Arn"] == function_arn
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
    assert target["DeadLetterConfig"] == {"Arn": out["DeadLetterQueueArn"]}
    assert reports["source"] == ["ecs-task-timing.sidecar"] and reports["detail-type"] == ["ECS Task Image Report"]
    assert {"suffix": ":cluster/shop-prod"} in reports["detail"]["clusterArn"]
    [statement] = json.loads(aws("lambda").get_policy(FunctionName=out["TaskEventsFunctionName"])["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "lambda:InvokeFunction"
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == out["RuleArn"]
    # The regression watch: hourly, task-summary with the published regressions query, invoked by that rule only.
    watch = events.describe_rule(Name=f"{deployed}-regression-watch")
    assert watch["ScheduleExpression"] == "rate(1 hour)"
    [target] = events.list_targets_by_rule(Rule=watch["Name"])["Targets"]
    summary_arn = aws("lambda").get_function(FunctionName=out["TaskSummaryFunctionName"])["Configuration"]["FunctionArn"]
    assert target["Arn"] == summary_arn and json.loads(target["Input"]) == {"query": "regressions", "publish": True}
    [statement] = json.loads(aws("lambda").get_policy(FunctionName=out["TaskSummaryFunctionName"])["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "lambda:InvokeFunction"
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == watch["Arn"]


def test_the_stream_feeds_task_rollups(aws, deployed):
    _, out = outputs_of(aws, deployed)
    dynamodb = aws("dynamodb")
    stream = dynamodb.describe_table(TableName=out["TasksTableName"])["Table"]["StreamSpecification"]
    assert stream == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    [mapping] = aws("lambda").list_event_source_mappings(FunctionName=out["TaskRollupsFunctionName"])["EventSourceMappings"]
    assert mapping["EventSourceArn"] == out["TasksStreamArn"]
    # The template's defaults: a task's share of the rollup writes rests on them (docs/deploy.md, What it costs).
    assert mapping["BatchSize"] == 1000
    assert mapping["MaximumBatchingWindowInSeconds"] == 120


def test_functions_have_their_role_environment_logs_and_failure_destination(aws, deployed):
    _, out = outputs_of(aws, deployed)
    lambda_client = aws("lambda")
    expected = {
        "task-events": (128, 30, out["TaskEventsRoleArn"], out["TaskEventsLogGroupName"], {
            "TABLE_NAME": out["TasksTableName"],
            "METRICS_NAMESPACE": "ECS/TaskTiming", "RETENTION_DAYS": "90", "SLOW_STARTUP_SECONDS": "45",
            "LAZY_LOADING_FAMILIES": "checkout-soci"}),
        "task-rollups": (128, 60, out["TaskRollupsRoleArn"], out["TaskRollupsLogGroupName"], {
            "TABLE_NAME": out["TasksTableName"], "ROLLUP_TABLE_NAME": out["RollupTableName"]}),
        # METRICS_NAMESPACE: where the regression watch publishes StartupRegression, task-events' namespace.
        "task-summary": (512, 60, out["TaskSummaryRoleArn"], out["TaskSummaryLogGroupName"], {
            "TABLE_NAME": out["TasksTableName"], "ROLLUP_TABLE_NAME": out["RollupTableName"],
            "METRICS_NAMESPACE": "ECS/TaskTiming"}),
    }
    for binary, (memory, timeout, role, log_group, environment) in expected.items():
        config = lambda_client.get_function_configuration(FunctionName=f"{deployed}-{binary}")
        assert (config["Runtime"], config["Architectures"], config["MemorySize"], config["Timeout"], config["Role"]) == \
            ("provided.al2023", [ARCH], memory, timeout, role), binary
        assert config["TracingConfig"] == {"Mode": "Active"}, binary
        assert config["LoggingConfig"] == {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "WARN", "LogGroup": log_group}
        variables = config["Environment"]["Variables"]
        secret = variables.pop("TOKEN_SECRET", None)
        assert variables == environment, binary
        assert (secret is not None and len(secret) >= 32) == (binary == "task-summary")
    invoke = lambda_client.get_function_event_invoke_config(FunctionName=out["TaskEventsFunctionName"])
    assert invoke["MaximumRetryAttempts"] == 2
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == out["DeadLetterQueueArn"]


def test_tables_queue_logs_dashboard_and_roles(aws, deployed, template):
    _, out = outputs_of(aws, deployed)
    dynamodb = aws("dynamodb")
    tasks = dynamodb.describe_table(TableName=out["TasksTableName"])["Table"]
    assert tasks["KeySchema"] == [{"AttributeName": "taskArn", "KeyType": "HASH"}]
    assert [(i["IndexName"], i["KeySchema"]) for i in tasks["GlobalSecondaryIndexes"]] == [
        ("family-createdAt-index", [{"AttributeName": "family", "KeyType": "HASH"}, {"AttributeName": "createdAt", "KeyType": "RANGE"}])]
    rollups = dynamodb.describe_table(TableName=out["RollupTableName"])["Table"]
    assert rollups["KeySchema"] == [{"AttributeName": "family", "KeyType": "HASH"}, {"AttributeName": "periodSeries", "KeyType": "RANGE"}]
    for table in (tasks, rollups):
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    # The tables the tests and `make demo` create (devtool create-tables) have the same shape.
    local = dynamodb.describe_table(TableName=os.environ.get("TABLE_NAME", "ecs-task-timing-tasks"))["Table"]
    assert local["KeySchema"] == tasks["KeySchema"] and local["GlobalSecondaryIndexes"][0]["KeySchema"] == tasks["GlobalSecondaryIndexes"][0]["KeySchema"]

    attributes = aws("sqs").get_queue_attributes(QueueUrl=out["DeadLetterQueueUrl"], AttributeNames=["All"])["Attributes"]
    assert attributes["MessageRetentionPeriod"] == "1209600"

    groups = {g["logGroupName"]: g.get("retentionInDays") for g in aws("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{deployed}-")["logGroups"]}
    assert groups == {out["TaskEventsLogGroupName"]: 30, out["TaskSummaryLogGroupName"]: 30, out["TaskRollupsLogGroupName"]: 30}

    body = json.loads(aws("cloudwatch").get_dashboard(DashboardName=out["DashboardName"])["DashboardBody"])
    text = json.dumps(body)
    for needed in ["TaskStartupTime", "'p50'", "'p90'", "ImagePullTime", "TasksStarted", "TasksStopped", "TasksFailedToStart",
                   "TimestampAnomalies", "Throttles", "ApproximateNumberOfMessagesVisible", f"{deployed}-dead-letters",
                   "ClusterName,TaskFamily,TaskRevision", f"alarm:{deployed}-startup-p90", "IteratorAge",
                   f"{deployed}-task-rollups", f"alarm:{deployed}-rollups-behind", f"alarm:{deployed}-stream-failures",
                   "ClusterName,TaskFamily,Snapshotter", "TasksBySnapshotter", "LazyLoadingFallbacks",
                   f"alarm:{deployed}-lazy-loading-fallback", "WarmUpTime", "TaskReadyTime",
                   "SELECT MAX(StartupRegression)", f"alarm:{deployed}-startup-regression"]:
        assert needed in text, needed

    iam = aws("iam")
    for key in ("TaskEventsRoleArn", "TaskSummaryRoleArn", "TaskRollupsRoleArn"):
        role = out[key].rsplit("/", 1)[1]
        [policy] = iam.list_role_policies(RoleName=role)["PolicyNames"]
        document = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
        # moto returns an inline policy created by CloudFormation as the repr of a dict.
        document = ast.literal_eval(document) if isinstance(document, str) else document
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all("*" not in action for action in actions), statement
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            # Only actions without resource-level permissions get "*".
            unscoped = all(a.startswith("xray:") or a == "dynamodb:ListStreams" for a in actions)
            assert resources == ["*"] and unscoped or "*" not in resources, statement
        assert iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_second_deploy_updates_in_place_and_keeps_what_was_not_given(aws, deployed):
    lambda_client = aws("lambda")
    summary = f"{deployed}-task-summary"
    secret_before = lambda_client.get_function_configuration(FunctionName=summary)["Environment"]["Variables"]["TOKEN_SECRET"]
    make("deploy", f"STACK_NAME={deployed}", f"ARCH={ARCH}", "PARAMS=RetentionDays=30 LogRetentionDays=7")
    status, out = outputs_of(aws, deployed)
    assert status == "UPDATE_COMPLETE"
    variables = lambda_client.get_function_configuration(FunctionName=out["TaskEventsFunctionName"])["Environment"]["Variables"]
    assert (variables["RETENTION_DAYS"], variables["SLOW_STARTUP_SECONDS"], variables["LAZY_LOADING_FAMILIES"]) == \
        ("30", "45", "checkout-soci")  # kept from the first deploy
    assert lambda_client.get_function_configuration(FunctionName=summary)["Environment"]["Variables"]["TOKEN_SECRET"] == secret_before
    for pattern in json.loads(aws("events").describe_rule(Name=out["RuleName"])["EventPattern"])["$or"]:
        assert {"suffix": ":cluster/shop-prod"} in pattern["detail"]["clusterArn"]  # Clusters kept
    assert len(aws("events").list_targets_by_rule(Rule=out["RuleName"])["Targets"]) == 1
    assert len(aws("events").list_targets_by_rule(Rule=f"{deployed}-regression-watch")["Targets"]) == 1
    groups = aws("logs").describe_log_groups(logGroupNamePrefix=out["TaskEventsLogGroupName"])["logGroups"]
    assert groups[0]["retentionInDays"] == 7


def test_destroy_keeps_the_tables_unless_asked(aws):
    stack = unique("destroy")
    make("deploy", f"STACK_NAME={stack}", f"ARCH={ARCH}")
    make("destroy", f"STACK_NAME={stack}")
    names = aws("lambda").list_functions()["Functions"]
    assert not [f for f in names if f["FunctionName"].startswith(f"{stack}-")]
    tables = aws("dynamodb").list_tables()["TableNames"]
    assert {f"{stack}-tasks", f"{stack}-rollups"} <= set(tables)
    assert not aws("lambda").list_event_source_mappings(FunctionName=f"{stack}-task-rollups")["EventSourceMappings"]
    for table in (f"{stack}-tasks", f"{stack}-rollups"):
        aws("dynamodb").delete_table(TableName=table)


def resources_of(template, kind):
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def test_template_alarms_cover_startup_dead_letters_errors_and_clocks(template):
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    assert set(alarms) == {"StartupP90Alarm", "DeadLetterAlarm", "TaskEventsErrorsAlarm", "TaskSummaryErrorsAlarm",
                           "ClockErrorBoundAlarm", "ClockNotSynchronizedAlarm", "RollupStreamIteratorAgeAlarm",
                           "StreamFailureAlarm", "LazyLoadingFallbackAlarm", "StartupRegressionAlarm"}
    # The fallback alarm: any LazyLoadingFallbacks (task-events counts only the listed families' tasks).
    fallback = alarms["LazyLoadingFallbackAlarm"]
    assert fallback["Condition"] == "HasLazyLoadingFamilies"
    assert (fallback["Properties"]["MetricName"], fallback["Properties"]["Statistic"], fallback["Properties"]["Threshold"],
            fallback["Properties"]["ComparisonOperator"]) == ("LazyLoadingFallbacks", "Sum", 0, "GreaterThanThreshold")
    assert "Dimensions" not in fallback["Properties"], "task-events emits it without dimensions for this alarm"
    # The sidecar may put its own source's events on the default bus, and nothing else.
    [put_events] = [s for s in resources_of(template, "AWS::IAM::ManagedPolicy")["ClockMonitorPolicy"]["Properties"]
                    ["PolicyDocument"]["Statement"] if s["Action"] == "events:PutEvents"]
    assert put_events["Condition"] == {"StringEquals": {"events:source": "ecs-task-timing.sidecar"}}
    startup = alarms["StartupP90Alarm"]["Properties"]
    [query] = startup["Metrics"]
    assert "AVG(SlowStartups)" in str(query["Expression"]) and "GROUP BY ClusterName, TaskFamily" in str(query["Expression"])
    assert (startup["Threshold"], startup["ComparisonOperator"]) == (0.1, "GreaterThanThreshold")  # share > 10% <=> p90 above
    dead = alarms["DeadLetterAlarm"]["Properties"]
    assert (dead["Namespace"], dead["MetricName"], dead["Threshold"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"Ref": "DeadLetterAlarmDepth"})
    for name in ("TaskEventsErrorsAlarm", "TaskSummaryErrorsAlarm"):
        assert (alarms[name]["Properties"]["MetricName"], alarms[name]["Properties"]["Threshold"]) == ("Errors", 0)
    behind = alarms["RollupStreamIteratorAgeAlarm"]["Properties"]
    assert (behind["MetricName"], behind["Statistic"]) == ("IteratorAge", "Maximum")
    failures = alarms["StreamFailureAlarm"]["Properties"]
    assert failures["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["StreamFailureQueue", "QueueName"]}
    # The mapping as the exactly-once guard needs it (docs/rollups.md): the shard named, one batch per shard.
    mapping = resources_of(template, "AWS::Lambda::EventSourceMapping")["RollupStreamMapping"]["Properties"]
    assert (mapping["ParallelizationFactor"], mapping["FunctionResponseTypes"], mapping["BisectBatchOnFunctionError"]) == \
        (1, ["ReportBatchItemFailures"], True)
    assert mapping["TumblingWindowInSeconds"] > 0
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}
    # The threshold the alarm documents is the one task-events compares with.
    assert template["Outputs"]["SlowStartupSeconds"]["Value"] == {"Ref": "StartupP90AlarmSeconds"}


def test_template_tables_expire_and_are_retained_and_the_queue_takes_the_rules_dead_letters(template):
    for name, table in resources_of(template, "AWS::DynamoDB::Table").items():
        assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain", name
        assert table["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}, name
        assert table["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name
        assert table["Properties"]["SSESpecification"] == {"SSEEnabled": True}, name
    [policy] = resources_of(template, "AWS::SQS::QueuePolicy").values()
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": ["TaskStateChangeRule", "Arn"]}
