"""Deploys infra/template.yaml into the local stack (moto CloudFormation) and checks that the tables it
creates have the same keys, attributes and indexes as the ones the tests and local-up create
(`devtool create-tables`). Run by tools/test.sh with the stack's environment."""
import os
import sys
import time
import uuid

import boto3

endpoint = os.environ["AWS_ENDPOINT_URL"]
cloudformation = boto3.client("cloudformation", endpoint_url=endpoint)
dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)

suffix = uuid.uuid4().hex[:8]
stack, table, rollups = f"template-check-{suffix}", f"template-check-{suffix}", f"template-check-{suffix}-rollups"
with open("infra/template.yaml", encoding="utf-8") as template:
    cloudformation.create_stack(StackName=stack, TemplateBody=template.read(),
                                Parameters=[{"ParameterKey": "TableName", "ParameterValue": table},
                                            {"ParameterKey": "RollupTableName", "ParameterValue": rollups}])
deadline = time.monotonic() + 60
while (status := cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]) == "CREATE_IN_PROGRESS":
    if time.monotonic() > deadline:
        sys.exit(f"{stack} still {status} after 60 s")
    time.sleep(0.2)
if status != "CREATE_COMPLETE":
    sys.exit(f"{stack}: {status}")


def shape(name):
    described = dynamodb.describe_table(TableName=name)["Table"]
    return {
        "KeySchema": described["KeySchema"],
        "AttributeDefinitions": sorted(described["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
        "Indexes": sorted((i["IndexName"], str(i["KeySchema"]), i["Projection"]["ProjectionType"])
                          for i in described.get("GlobalSecondaryIndexes", [])),
    }


pairs = [(table, os.environ.get("TABLE_NAME", "ecs-task-timing-tasks")),
         (rollups, os.environ.get("ROLLUP_TABLE_NAME", "ecs-task-timing-rollups"))]
shapes = [(shape(deployed), shape(local)) for deployed, local in pairs]
cloudformation.delete_stack(StackName=stack)
for deployed, _ in pairs:
    dynamodb.delete_table(TableName=deployed)  # DeletionPolicy Retain keeps it; this is a throwaway copy
for (deployed, local), (name, _) in zip(shapes, pairs):
    if deployed != local:
        sys.exit(f"infra/template.yaml and devtool create-tables disagree on {name}:\n template: {deployed}\n local:    {local}")
print("infra/template.yaml deploys the same table shapes as the local stack (tasks with 1 index, rollups).")
