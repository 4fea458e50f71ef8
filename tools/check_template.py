"""Deploys infra/template.yaml into the local stack (moto CloudFormation) and checks that the table it
creates has the same keys, attributes and index as the one the tests and local-up create
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
stack, table = f"template-check-{suffix}", f"template-check-{suffix}"
with open("infra/template.yaml", encoding="utf-8") as template:
    cloudformation.create_stack(StackName=stack, TemplateBody=template.read(),
                                Parameters=[{"ParameterKey": "TableName", "ParameterValue": table}])
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


reference = os.environ.get("TABLE_NAME", "ecs-task-timing-tasks")
deployed, local = shape(table), shape(reference)
cloudformation.delete_stack(StackName=stack)
dynamodb.delete_table(TableName=table)  # DeletionPolicy Retain keeps it; this is a throwaway copy
if deployed != local:
    sys.exit(f"infra/template.yaml and devtool create-tables disagree:\n template: {deployed}\n local:    {local}")
print(f"infra/template.yaml deploys the same table shape as the local stack ({len(deployed['Indexes'])} index).")
