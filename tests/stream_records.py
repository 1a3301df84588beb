"""Reads the registry table's DynamoDB Stream from moto_server, as Lambda would deliver it.

Usage: stream_records.py URL ACCOUNT TABLE [SKIP]
Prints one Lambda event, {"Records": [...]}, holding every record of the table's stream
after the first SKIP (default 0), oldest first, each shaped as Lambda's DynamoDB event source
shapes it (eventID, eventName, eventSource "aws:dynamodb", dynamodb: Keys, NewImage,
SequenceNumber, StreamViewType). ACCOUNT is the moto account the test works in.
"""

import json
import sys

import boto3


def client(service, url, account):
    c = boto3.client(
        service,
        endpoint_url=url,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )

    def add_account(request, **_):
        request.headers["x-moto-account-id"] = account

    c.meta.events.register("before-sign.*.*", add_account)
    return c


def main():
    url, account, table = sys.argv[1:4]
    skip = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    ddb = client("dynamodb", url, account)
    streams = client("dynamodbstreams", url, account)
    arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    records = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        it = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while it:
            out = streams.get_records(ShardIterator=it)
            records.extend(out["Records"])
            if not out["Records"]:
                break
            it = out.get("NextShardIterator")
    shaped = [
        {
            "eventID": r["eventID"],
            "eventName": r["eventName"],
            "eventSource": "aws:dynamodb",
            "eventSourceARN": arn,
            "dynamodb": r["dynamodb"],
        }
        for r in records[skip:]
    ]
    print(json.dumps({"Records": shaped}, default=str))


if __name__ == "__main__":
    main()
