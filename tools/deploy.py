"""make deploy / make destroy: the template, the three functions and the wiring between them, in an
order that works on a fresh account, on updates, and on the upgrade to rollups from the stream.

  deploy.py deploy  STACK [Name=Value ...]   stack parameters; on updates, the ones not given keep their values
  deploy.py destroy STACK [--delete-tables]  the tables are kept unless asked (DeletionPolicy Retain)
  deploy.py deploy-member  STACK CentralEventBusArn=ARN [Name=Value ...]   infra/member.yaml alone (no functions)
  deploy.py destroy-member STACK

Central mode is `deploy` with OrganizationId and/or SourceAccounts; the member stack (make deploy-member,
or a StackSet: docs/organisation.md) forwards a member account's ECS task events to its event bus.

Deploy:
  1. the stack, with FunctionsDeployed=true only if task-events and task-summary already exist (on a fresh
     account the rule has no target yet: its target and the invoke permission need the function), and
     RollupsDeployed=true only if task-rollups does (the stream's event source mapping needs it). On the
     upgrade from the transaction path this update turns the stream on, while the rule keeps its target;
  2. each function with `cargo lambda deploy` (arm64 bootstraps from `cargo lambda build --release
     --arm64`), its role and environment from the stack's outputs: task-rollups first;
  3. what cargo lambda cannot set: JSON logs into the stack's log group, and task-events' failed
     asynchronous invocations (after Lambda's 2 retries) to the dead-letter queue;
  4. the stack again with both true, if step 1 could not: the rule targets task-events, and the mapping
     feeds task-rollups from the oldest record the stream holds (so from the upgrade on, docs/rollups.md).
Uses the standard AWS environment (AWS_PROFILE, AWS_REGION, ...); AWS_ENDPOINT_URL points it all at a
local stack (the tests).
"""
import json
import os
import secrets
import subprocess
import sys
import tempfile

import boto3
import botocore.exceptions
from cfnlint.decode import cfn_yaml  # reads the template's !Ref/!Sub tags

TEMPLATE = os.path.join(os.path.dirname(__file__), "..", "infra", "template.yaml")
MEMBER_TEMPLATE = os.path.join(os.path.dirname(__file__), "..", "infra", "member.yaml")
# In this order: task-rollups must know every mark task-events writes on records (`rollupsFromStream`,
# `ra`, rollups by account) before the first such record reaches the stream (docs/rollups.md, "Upgrade in place").
FUNCTIONS = ("task-rollups", "task-events", "task-summary")
LOCAL = bool(os.environ.get("AWS_ENDPOINT_URL"))


def log(message):
    print(f"deploy: {message}", file=sys.stderr, flush=True)


def clients():
    session = boto3.session.Session()
    return session.client("cloudformation"), session.client("lambda")


def stack_status(cloudformation, stack):
    """The stack's status, None if there is none."""
    try:
        return cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    except botocore.exceptions.ClientError as err:
        if "does not exist" in str(err):
            return None
        raise


def stack_exists(cloudformation, stack):
    """For a deploy: whether to update; a stack whose first create failed can only be deleted."""
    status = stack_status(cloudformation, stack)
    if status == "ROLLBACK_COMPLETE":  # a failed first create cannot be updated: AWS wants it deleted
        sys.exit(f"stack {stack} is ROLLBACK_COMPLETE: `make destroy STACK_NAME={stack}` and deploy again")
    return status is not None


def function_exists(lambda_client, name):
    try:
        lambda_client.get_function(FunctionName=name)
        return True
    except lambda_client.exceptions.ResourceNotFoundException:
        return False


def wait(cloudformation, stack, operation):
    waiter = cloudformation.get_waiter(f"stack_{operation}_complete")
    # A local stack answers at once; AWS takes minutes, and polling every 5 s is what the CLI does.
    waiter.wait(StackName=stack, WaiterConfig={"Delay": 1 if LOCAL else 5, "MaxAttempts": 720})


def deploy_stack(cloudformation, stack, given, functions_deployed, rollups_deployed):
    with open(TEMPLATE, encoding="utf-8") as template:
        body = template.read()
    declared = set(cfn_yaml.load(TEMPLATE)["Parameters"])
    unknown = set(given) - declared
    if unknown:
        sys.exit(f"unknown stack parameters: {', '.join(sorted(unknown))} (infra/template.yaml declares {', '.join(sorted(declared))})")
    values = dict(given, FunctionsDeployed="true" if functions_deployed else "false",
                  RollupsDeployed="true" if rollups_deployed else "false")
    parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]
    capabilities = ["CAPABILITY_IAM"]
    if not stack_exists(cloudformation, stack):
        log(f"creating stack {stack} (FunctionsDeployed={values['FunctionsDeployed']}, RollupsDeployed={values['RollupsDeployed']})")
        cloudformation.create_stack(StackName=stack, TemplateBody=body, Parameters=parameters, Capabilities=capabilities)
        wait(cloudformation, stack, "create")
        return
    log(f"updating stack {stack} (FunctionsDeployed={values['FunctionsDeployed']}, RollupsDeployed={values['RollupsDeployed']})")
    update_stack(cloudformation, stack, body, parameters, declared - set(values))


def update_stack(cloudformation, stack, body, parameters, keep):
    """Updates the stack; the declared parameters in `keep` that the stack has keep their current values
    (passed as values: no parameter is NoEcho)."""
    current = {p["ParameterKey"]: p["ParameterValue"]
               for p in cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Parameters", [])}
    parameters = parameters + [{"ParameterKey": k, "ParameterValue": current[k]} for k in sorted(keep & set(current))]
    try:
        cloudformation.update_stack(StackName=stack, TemplateBody=body, Parameters=parameters,
                                    Capabilities=["CAPABILITY_IAM"])
    except botocore.exceptions.ClientError as err:
        if "No updates are to be performed" in str(err):
            log(f"stack {stack} already up to date")
            return
        raise
    wait(cloudformation, stack, "update")


def deploy_member(stack, assignments):
    """infra/member.yaml as STACK: created, or updated with the parameters not given kept."""
    given = parse_assignments(assignments)
    declared = set(cfn_yaml.load(MEMBER_TEMPLATE)["Parameters"])
    unknown = set(given) - declared
    if unknown:
        sys.exit(f"unknown member stack parameters: {', '.join(sorted(unknown))} (infra/member.yaml declares {', '.join(sorted(declared))})")
    cloudformation = boto3.session.Session().client("cloudformation")
    with open(MEMBER_TEMPLATE, encoding="utf-8") as template:
        body = template.read()
    parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()]
    capabilities = ["CAPABILITY_IAM"]
    status = stack_status(cloudformation, stack)
    if status == "ROLLBACK_COMPLETE":  # a failed first create cannot be updated: AWS wants it deleted
        sys.exit(f"member stack {stack} is ROLLBACK_COMPLETE: `make destroy-member MEMBER_STACK_NAME={stack}` and deploy again")
    if status is None:
        if not given.get("CentralEventBusArn"):
            sys.exit("deploy-member: CentralEventBusArn=<the central stack's EventBusArn output> is required (make deploy-member CENTRAL_BUS_ARN=...)")
        log(f"creating member stack {stack} (forwarding to {given['CentralEventBusArn']})")
        cloudformation.create_stack(StackName=stack, TemplateBody=body, Parameters=parameters, Capabilities=capabilities)
        wait(cloudformation, stack, "create")
    else:
        log(f"updating member stack {stack}")
        update_stack(cloudformation, stack, body, parameters, declared - set(given))
    print(json.dumps(outputs(cloudformation, stack), indent=2, sort_keys=True))


def destroy_member(stack):
    cloudformation = boto3.session.Session().client("cloudformation")
    if stack_status(cloudformation, stack) is None:
        log(f"no member stack {stack}")
        return
    log(f"deleting member stack {stack}")
    cloudformation.delete_stack(StackName=stack)
    wait(cloudformation, stack, "delete")


def outputs(cloudformation, stack):
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def environments(out, lambda_client):
    """Each function's environment. TOKEN_SECRET (which signs task-summary's nextToken) is kept
    across deploys, so tokens handed out before an update still work."""
    tables = {"TABLE_NAME": out["TasksTableName"], "ROLLUP_TABLE_NAME": out["RollupTableName"]}
    secret = None
    if function_exists(lambda_client, out["TaskSummaryFunctionName"]):
        configuration = lambda_client.get_function_configuration(FunctionName=out["TaskSummaryFunctionName"])
        secret = configuration.get("Environment", {}).get("Variables", {}).get("TOKEN_SECRET")
    lazy_loading_families = out.get("LazyLoadingFamilies", "")
    return {
        "task-events": dict(TABLE_NAME=out["TasksTableName"], METRICS_NAMESPACE=out["MetricsNamespace"], RETENTION_DAYS=out["RetentionDays"],
                            SLOW_STARTUP_SECONDS=out["SlowStartupSeconds"],
                            # cargo lambda refuses an empty value: none listed, none set.
                            **({"LAZY_LOADING_FAMILIES": lazy_loading_families} if lazy_loading_families else {})),
        "task-summary": dict(tables, METRICS_NAMESPACE=out["MetricsNamespace"], TOKEN_SECRET=secret or secrets.token_urlsafe(48)),
        "task-rollups": dict(tables),
    }


def output_name(binary):
    """task-rollups -> TaskRollups, as the stack's outputs spell it."""
    return "".join(part.capitalize() for part in binary.split("-"))


def deploy_function(binary, name, role, environment):
    command = ["cargo", "lambda", "deploy", "--binary-name", binary, "--role", role, "--output-format", "json"]
    if LOCAL:
        command += ["--endpoint-url", os.environ["AWS_ENDPOINT_URL"]]
    public = {k: v for k, v in environment.items() if k != "TOKEN_SECRET"}
    for key, value in sorted(public.items()):
        command += ["--env-var", f"{key}={value}"]
    # The secret goes through a private file, not the command line (visible in the process list).
    with tempfile.NamedTemporaryFile("w", suffix=".env", delete=True) as secret_file:
        if "TOKEN_SECRET" in environment:
            secret_file.write(f"TOKEN_SECRET={environment['TOKEN_SECRET']}\n")
            secret_file.flush()
            command += ["--env-file", secret_file.name]
        log(f"cargo lambda deploy {binary} as {name}")
        subprocess.run(command + [name], check=True, stdout=subprocess.DEVNULL)


def configure_function(lambda_client, name, log_group, dead_letter_arn=None):
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1 if LOCAL else 2})
    lambda_client.update_function_configuration(
        FunctionName=name,
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "WARN", "LogGroup": log_group},
    )
    if dead_letter_arn:
        lambda_client.put_function_event_invoke_config(
            FunctionName=name,
            MaximumRetryAttempts=2,
            MaximumEventAgeInSeconds=21600,
            DestinationConfig={"OnFailure": {"Destination": dead_letter_arn}},
        )


def parse_assignments(assignments):
    given = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key:
            sys.exit(f"stack parameters are Name=Value, got {assignment!r}")
        given[key] = value
    return given


def deploy(stack, assignments):
    given = parse_assignments(assignments)
    for own in ("FunctionsDeployed", "RollupsDeployed"):
        if own in given:
            sys.exit(f"{own} is set by deploy.py itself")
    cloudformation, lambda_client = clients()
    names = {binary: f"{stack}-{binary}" for binary in FUNCTIONS}
    wired = all(function_exists(lambda_client, names[binary]) for binary in ("task-events", "task-summary"))
    rollups_wired = function_exists(lambda_client, names["task-rollups"])
    deploy_stack(cloudformation, stack, given, functions_deployed=wired, rollups_deployed=rollups_wired)
    out = outputs(cloudformation, stack)
    env = environments(out, lambda_client)
    roles = {binary: out[f"{output_name(binary)}RoleArn"] for binary in FUNCTIONS}
    groups = {binary: out[f"{output_name(binary)}LogGroupName"] for binary in FUNCTIONS}
    for binary, name in names.items():
        deploy_function(binary, name, roles[binary], env[binary])
        configure_function(lambda_client, name, groups[binary],
                           out["DeadLetterQueueArn"] if binary == "task-events" else None)
    if not (wired and rollups_wired):
        deploy_stack(cloudformation, stack, {}, functions_deployed=True, rollups_deployed=True)
    out = outputs(cloudformation, stack)
    print(json.dumps(out, indent=2, sort_keys=True))


def destroy(stack, delete_tables):
    cloudformation, lambda_client = clients()
    tables = []
    # Whatever its status: a ROLLBACK_COMPLETE stack is deleted too.
    if stack_status(cloudformation, stack) is not None:
        out = outputs(cloudformation, stack)
        tables = [out.get("TasksTableName"), out.get("RollupTableName")]
    # Functions first: the rule stops invoking them when the stack goes, and a function left running
    # would recreate its log group outside the stack.
    for binary in FUNCTIONS:
        name = f"{stack}-{binary}"
        if function_exists(lambda_client, name):
            log(f"deleting function {name}")
            lambda_client.delete_function(FunctionName=name)
    if tables:
        log(f"deleting stack {stack}")
        cloudformation.delete_stack(StackName=stack)
        wait(cloudformation, stack, "delete")
    if delete_tables:
        dynamodb = boto3.client("dynamodb")
        for table in filter(None, tables):
            log(f"deleting table {table}")
            dynamodb.delete_table(TableName=table)
    elif tables:
        log(f"kept tables {', '.join(filter(None, tables))} (DeletionPolicy Retain; DELETE_TABLES=1 removes them)")


def main(argv):
    if len(argv) < 2 or argv[0] not in ("deploy", "destroy", "deploy-member", "destroy-member"):
        sys.exit(__doc__)
    if argv[0] == "deploy":
        deploy(argv[1], argv[2:])
    elif argv[0] == "deploy-member":
        deploy_member(argv[1], argv[2:])
    elif argv[0] == "destroy-member":
        destroy_member(argv[1])
    else:
        destroy(argv[1], "--delete-tables" in argv[2:])


if __name__ == "__main__":
    main(sys.argv[1:])
