"""Creates the local DynamoDB tables (moto) with the same keys and index as infra/.

Usage: python tools/local_stack.py create-tables   (idempotent; reads AWS_ENDPOINT_URL and TABLE_NAME)
"""
import os
import sys
import time

import boto3
from botocore.exceptions import ClientError

FAMILY_INDEX = "family-createdAt-index"


def tasks_table_definition(name):
    return dict(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "taskArn", "AttributeType": "S"},
            {"AttributeName": "family", "AttributeType": "S"},
            {"AttributeName": "createdAt", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "taskArn", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": FAMILY_INDEX,
                "KeySchema": [
                    {"AttributeName": "family", "KeyType": "HASH"},
                    {"AttributeName": "createdAt", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


def create_tables():
    client = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    name = os.environ.get("TABLE_NAME", "ecs-task-timing-tasks")
    try:
        client.create_table(**tasks_table_definition(name))
    except ClientError as err:
        if err.response["Error"]["Code"] != "ResourceInUseException":
            raise
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"})


def wait_for_endpoint(seconds=30.0):
    client = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    deadline = time.monotonic() + seconds
    while True:
        try:
            client.list_tables(Limit=1)
            return
        except Exception as err:  # connection refused until moto listens
            if time.monotonic() > deadline:
                sys.exit(f"local AWS endpoint {os.environ['AWS_ENDPOINT_URL']} did not answer in {seconds:.0f}s: {err}")
            time.sleep(0.1)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "create-tables":
        wait_for_endpoint()
        create_tables()
    elif command == "wait":
        wait_for_endpoint()
    else:
        sys.exit(__doc__)
