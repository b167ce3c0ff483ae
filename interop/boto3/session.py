#!/usr/bin/python3
"""A scripted boto3 session against runnel serve: every Kinesis operation
this boto3 offers (read from its service model, so a newer boto3 that adds
operations fails here until they are covered), its paginators and its
waiters. Usage: session.py ENDPOINT [CA_BUNDLE]. Exits non-zero, naming the
step, on any failure; prints "boto3 session: N operations ok" at the end."""
import sys
import time

import boto3
from botocore.config import Config

endpoint = sys.argv[1]
verify = sys.argv[2] if len(sys.argv) > 2 else None
kin = boto3.client(
    "kinesis", endpoint_url=endpoint, region_name="us-east-1", verify=verify,
    aws_access_key_id="k", aws_secret_access_key="s",
    config=Config(retries={"max_attempts": 2}))
called = set()
name = "boto3-%d" % (time.time_ns() % 10**9)


def call(op, **kw):
    called.add(op)
    method = getattr(kin, "".join("_" + c.lower() if c.isupper() else c for c in op).lstrip("_"))
    try:
        return method(**kw)
    except Exception as e:
        sys.exit("boto3 %s failed: %r" % (op, e))


def check(cond, what):
    if not cond:
        sys.exit("boto3 check failed: " + what)


fast = {"Delay": 0.2, "MaxAttempts": 100}
call("CreateStream", StreamName=name, ShardCount=2)
kin.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig=fast)
arn = call("DescribeStreamSummary", StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
call("DescribeLimits")
check(name in [n for p in kin.get_paginator("list_streams").paginate(PaginationConfig={"PageSize": 1}) for n in p["StreamNames"]], "list_streams paginator")
called.add("ListStreams")
call("ListStreams", Limit=5)
# botocore's list_shards paginator sends StreamName with NextToken, which
# AWS rejects ("NextToken and StreamName cannot be provided together"), and
# so does Runnel: page by hand instead.
page = call("ListShards", StreamName=name, MaxResults=1)
shards = [s["ShardId"] for s in page["Shards"]]
while page.get("NextToken"):
    page = call("ListShards", NextToken=page["NextToken"], MaxResults=1)
    shards += [s["ShardId"] for s in page["Shards"]]
check(len(shards) == 2, "ListShards paging: %s" % shards)
check(len([s for p in kin.get_paginator("describe_stream").paginate(StreamName=name, PaginationConfig={"PageSize": 1}) for s in p["StreamDescription"]["Shards"]]) == 2, "describe_stream paginator")
call("DescribeStream", StreamName=name)

put = call("PutRecord", StreamName=name, PartitionKey="k", Data=b"hello")
res = call("PutRecords", StreamName=name, Records=[{"PartitionKey": "k%d" % i, "Data": b"x%d" % i} for i in range(10)])
check(res["FailedRecordCount"] == 0, "PutRecords failures")
it = call("GetShardIterator", StreamName=name, ShardId=put["ShardId"], ShardIteratorType="AT_SEQUENCE_NUMBER",
          StartingSequenceNumber=put["SequenceNumber"])["ShardIterator"]
recs = call("GetRecords", ShardIterator=it, Limit=1)["Records"]
check(recs and recs[0]["Data"] == b"hello", "GetRecords: %r" % recs)
ts = recs[0]["ApproximateArrivalTimestamp"]
it = kin.get_shard_iterator(StreamName=name, ShardId=put["ShardId"], ShardIteratorType="AT_TIMESTAMP", Timestamp=ts)["ShardIterator"]
check(kin.get_records(ShardIterator=it)["Records"][0]["Data"] == b"hello", "AT_TIMESTAMP with the arrival time")

call("AddTagsToStream", StreamName=name, Tags={"team": "data", "env": "test"})
check({t["Key"] for t in call("ListTagsForStream", StreamName=name)["Tags"]} == {"team", "env"}, "tags")
call("RemoveTagsFromStream", StreamName=name, TagKeys=["env"])
call("IncreaseStreamRetentionPeriod", StreamName=name, RetentionPeriodHours=48)
call("DecreaseStreamRetentionPeriod", StreamName=name, RetentionPeriodHours=24)
call("EnableEnhancedMonitoring", StreamName=name, ShardLevelMetrics=["IncomingBytes"])
call("DisableEnhancedMonitoring", StreamName=name, ShardLevelMetrics=["IncomingBytes"])
call("StartStreamEncryption", StreamName=name, EncryptionType="KMS", KeyId="alias/aws/kinesis")
kin.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig=fast)
call("StopStreamEncryption", StreamName=name, EncryptionType="KMS", KeyId="alias/aws/kinesis")
kin.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig=fast)

cons = call("RegisterStreamConsumer", StreamARN=arn, ConsumerName="c1")["Consumer"]
for _ in range(100):
    if call("DescribeStreamConsumer", ConsumerARN=cons["ConsumerARN"])["ConsumerDescription"]["ConsumerStatus"] == "ACTIVE":
        break
    time.sleep(0.1)
check([c["ConsumerName"] for p in kin.get_paginator("list_stream_consumers").paginate(StreamARN=arn) for c in p["Consumers"]] == ["c1"], "list_stream_consumers paginator")
call("ListStreamConsumers", StreamARN=arn)
sub = call("SubscribeToShard", ConsumerARN=cons["ConsumerARN"], ShardId=put["ShardId"], StartingPosition={"Type": "TRIM_HORIZON"})
got = None
for ev in sub["EventStream"]:
    recs = ev.get("SubscribeToShardEvent", {}).get("Records", [])
    if recs:
        got = recs[0]["Data"]
        break
sub["EventStream"].close()
check(got == b"hello", "SubscribeToShard: %r" % got)
call("DeregisterStreamConsumer", StreamARN=arn, ConsumerName="c1")

call("SplitShard", StreamName=name, ShardToSplit=shards[0], NewStartingHashKey=str(2**126))
kin.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig=fast)
open_ids = [s["ShardId"] for s in kin.list_shards(StreamName=name, ShardFilter={"Type": "AT_LATEST"})["Shards"]]
call("MergeShards", StreamName=name, ShardToMerge=open_ids[-2], AdjacentShardToMerge=open_ids[-1])  # the two children of the split
kin.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig=fast)
call("UpdateShardCount", StreamName=name, TargetShardCount=4, ScalingType="UNIFORM_SCALING")
kin.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig=fast)
call("UpdateStreamMode", StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})

try:
    kin.describe_stream_summary(StreamName=name + "-missing")
    sys.exit("boto3: a missing stream was found")
except kin.exceptions.ResourceNotFoundException:
    pass
try:
    kin.create_stream(StreamName="", ShardCount=0)
    sys.exit("boto3: an invalid CreateStream was accepted")
except Exception as e:  # botocore validates some parameters itself
    pass

call("DeleteStream", StreamName=name)
kin.get_waiter("stream_not_exists").wait(StreamName=name, WaiterConfig=fast)

missing = sorted(set(kin.meta.service_model.operation_names) - called)
check(not missing, "operations not covered: %s" % missing)
print("boto3 session: %d operations ok (boto3 %s)" % (len(called), boto3.__version__))
