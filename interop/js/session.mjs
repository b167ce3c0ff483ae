// A scripted AWS SDK for JavaScript v3 session against runnel serve: every
// command @aws-sdk/client-kinesis exports (so a newer client with more
// operations fails here until they are covered), its paginators, its
// stream waiters and SubscribeToShard. Usage: RUNNEL_CHANNEL_BUCKET=BUCKET
// node session.mjs ENDPOINT (for HTTPS with a self-signed certificate set
// NODE_EXTRA_CA_CERTS).
// Prints "js session: N operations ok" at the end; exits 1 naming the step.
import * as K from "@aws-sdk/client-kinesis";

const endpoint = process.argv[2];
const kin = new K.KinesisClient({
  endpoint, region: "us-east-1", maxAttempts: 2,
  credentials: { accessKeyId: "k", secretAccessKey: "s" },
});
const called = new Set();
const fail = (msg) => { console.error("js " + msg); process.exit(1); };
async function call(op, input, expectError) {
  called.add(op);
  try {
    const out = await kin.send(new K[op + "Command"](input));
    if (expectError) fail(`${op}: succeeded, want ${expectError}`);
    return out;
  } catch (e) {
    if (expectError && e.name === expectError) return e;
    fail(`${op} failed: ${e.name}: ${e.message}`);
  }
}
const check = (ok, what) => { if (!ok) fail("check failed: " + what); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const waitActive = (StreamName) => K.waitUntilStreamExists({ client: kin, minDelay: 1, maxWaitTime: 60 }, { StreamName });

const name = "js-" + Date.now();
await call("CreateStream", { StreamName: name, ShardCount: 2, MaxRecordSizeInKiB: 2048 });
await waitActive(name);
const arn = (await call("DescribeStreamSummary", { StreamName: name })).StreamDescriptionSummary.StreamARN;
await call("DescribeLimits", {});
await call("DescribeAccountSettings", {});
await call("UpdateAccountSettings", { MinimumThroughputBillingCommitment: { Status: "DISABLED" } });
let seen = false;
for await (const p of K.paginateListStreams({ client: kin, pageSize: 1 }, {})) seen ||= p.StreamNames.includes(name);
check(seen, "paginateListStreams finds the stream");
called.add("ListStreams");
const shards = (await call("ListShards", { StreamName: name })).Shards.map((s) => s.ShardId);
check(shards.length === 2, "ListShards");
check((await call("DescribeStream", { StreamName: name, Limit: 1 })).StreamDescription.HasMoreShards, "DescribeStream paging");

const put = await call("PutRecord", { StreamName: name, PartitionKey: "k", Data: new TextEncoder().encode("hello") });
const big = new Uint8Array(1536 * 1024);
const res = await call("PutRecords", { StreamName: name, Records: [{ PartitionKey: "a", Data: big }, { PartitionKey: "b", Data: new Uint8Array([1]) }] });
check(res.FailedRecordCount === 0, "PutRecords of a 1.5 MiB record into a 2 MiB stream");
const it = (await call("GetShardIterator", { StreamName: name, ShardId: put.ShardId, ShardIteratorType: "AT_SEQUENCE_NUMBER", StartingSequenceNumber: put.SequenceNumber })).ShardIterator;
const recs = (await call("GetRecords", { ShardIterator: it, Limit: 1 })).Records;
check(new TextDecoder().decode(recs[0].Data) === "hello", "GetRecords");
const at = recs[0].ApproximateArrivalTimestamp;
const it2 = (await kin.send(new K.GetShardIteratorCommand({ StreamName: name, ShardId: put.ShardId, ShardIteratorType: "AT_TIMESTAMP", Timestamp: at }))).ShardIterator;
check(new TextDecoder().decode((await kin.send(new K.GetRecordsCommand({ ShardIterator: it2 }))).Records[0].Data) === "hello", "AT_TIMESTAMP with the arrival time");

await call("AddTagsToStream", { StreamName: name, Tags: { team: "data" } });
check((await call("ListTagsForStream", { StreamName: name })).Tags.length === 1, "ListTagsForStream");
await call("RemoveTagsFromStream", { StreamName: name, TagKeys: ["team"] });
await call("TagResource", { ResourceARN: arn, Tags: { env: "test" } });
check((await call("ListTagsForResource", { ResourceARN: arn })).Tags.length === 1, "ListTagsForResource");
await call("UntagResource", { ResourceARN: arn, TagKeys: ["env"] });
await call("IncreaseStreamRetentionPeriod", { StreamName: name, RetentionPeriodHours: 48 });
await call("DecreaseStreamRetentionPeriod", { StreamName: name, RetentionPeriodHours: 24 });
await call("EnableEnhancedMonitoring", { StreamName: name, ShardLevelMetrics: ["ALL"] });
await call("DisableEnhancedMonitoring", { StreamName: name, ShardLevelMetrics: ["ALL"] });
await call("StartStreamEncryption", { StreamName: name, EncryptionType: "KMS", KeyId: "alias/aws/kinesis" });
await waitActive(name);
await call("StopStreamEncryption", { StreamName: name, EncryptionType: "KMS", KeyId: "alias/aws/kinesis" });
await waitActive(name);
const policy = JSON.stringify({ Version: "2012-10-17", Statement: [] });
await call("PutResourcePolicy", { ResourceARN: arn, Policy: policy });
check((await call("GetResourcePolicy", { ResourceARN: arn })).Policy === policy, "GetResourcePolicy");
await call("DeleteResourcePolicy", { ResourceARN: arn });
await call("UpdateMaxRecordSize", { StreamARN: arn, MaxRecordSizeInKiB: 4096 });
await call("UpdateStreamWarmThroughput", { StreamName: name, WarmThroughputMiBps: 10 });
await call("UpdateStreamRecordDistributionStrategy", { StreamARN: arn, RecordDistributionStrategy: "USER_PARTITION_KEY" });

const cons = (await call("RegisterStreamConsumer", { StreamARN: arn, ConsumerName: "c1" })).Consumer;
for (let i = 0; i < 100; i++) {
  if ((await call("DescribeStreamConsumer", { ConsumerARN: cons.ConsumerARN })).ConsumerDescription.ConsumerStatus === "ACTIVE") break;
  await sleep(100);
}
let consumers = [];
for await (const p of K.paginateListStreamConsumers({ client: kin, pageSize: 1 }, { StreamARN: arn })) consumers.push(...p.Consumers);
check(consumers.length === 1, "paginateListStreamConsumers");
called.add("ListStreamConsumers");
const sub = await call("SubscribeToShard", { ConsumerARN: cons.ConsumerARN, ShardId: put.ShardId, StartingPosition: { Type: "TRIM_HORIZON" } });
let got = null;
for await (const ev of sub.EventStream) {
  const r = ev.SubscribeToShardEvent?.Records ?? [];
  if (r.length) { got = new TextDecoder().decode(r[0].Data); break; }
}
check(got === "hello", "SubscribeToShard: " + got);
await call("DeregisterStreamConsumer", { StreamARN: arn, ConsumerName: "c1" });

await call("SplitShard", { StreamName: name, ShardToSplit: shards[0], NewStartingHashKey: (2n ** 126n).toString() });
await waitActive(name);
const open = (await kin.send(new K.ListShardsCommand({ StreamName: name, ShardFilter: { Type: "AT_LATEST" } }))).Shards.map((s) => s.ShardId);
await call("MergeShards", { StreamName: name, ShardToMerge: open.at(-2), AdjacentShardToMerge: open.at(-1) });
await waitActive(name);
await call("UpdateShardCount", { StreamName: name, TargetShardCount: 4, ScalingType: "UNIFORM_SCALING" });
await waitActive(name);
await call("UpdateStreamMode", { StreamARN: arn, StreamModeDetails: { StreamMode: "ON_DEMAND" } });

// A channel delivers a stream of its own to the S3 bucket RUNNEL_CHANNEL_BUCKET
// (the server's --channels-s3-endpoint): created, described until ACTIVE,
// listed, updated and deleted. The caller then finds the records in the
// bucket (deleting a channel stops its job at a last checkpoint, which
// delivers what it read).
const bucket = process.env.RUNNEL_CHANNEL_BUCKET;
if (!bucket) fail("RUNNEL_CHANNEL_BUCKET is not set: name a bucket of the server's --channels-s3-endpoint");
const chStream = name + "-ch";
await call("CreateStream", { StreamName: chStream, ShardCount: 1 });
await waitActive(chStream);
const chStreamARN = (await call("DescribeStreamSummary", { StreamName: chStream })).StreamDescriptionSummary.StreamARN;
await call("PutRecords", { StreamName: chStream, Records: [0, 1, 2, 3, 4].map((n) => ({ PartitionKey: "k" + n, Data: new TextEncoder().encode(JSON.stringify({ n })) })) });
const created = await call("CreateChannel", {
  ChannelName: "ch", ServiceExecutionRoleARN: "arn:aws:iam::000000000000:role/delivery",
  StreamConfigurationList: [{ StreamARN: chStreamARN, RecordConfiguration: { RecordFormatType: "JSON" } }],
  S3DestinationConfiguration: { DataFreshnessInSeconds: 1, StorageConfiguration: { BucketARN: "arn:aws:s3:::" + bucket, CompressionType: "NONE", ExpectedBucketOwner: "000000000000" } },
});
const chanARN = created.ChannelDescription.ChannelARN;
const waitChannel = async (what) => {
  for (let i = 0; i < 120; i++) {
    const d = (await call("DescribeChannel", { ChannelARN: chanARN })).ChannelDescription;
    if (d.ChannelStatus === "ACTIVE") return d;
    if (d.ChannelStatus === "FAILED") fail(`channel ${what}: FAILED: ${d.ChannelStatusReason}`);
    await sleep(500);
  }
  fail(`channel ${what}: not ACTIVE within a minute`);
};
let cd = await waitChannel("created");
check(cd.ChannelName === "ch" && cd.StreamConfigurationList[0].StreamARN === chStreamARN, "DescribeChannel names the channel and its stream");
const listed = (await call("ListChannels", {})).ChannelSummaries;
check(listed.length === 1 && listed[0].ChannelARN === chanARN && listed[0].ChannelDestinationType === "S3", "ListChannels lists the channel");
const updated = await call("UpdateChannel", { ChannelARN: chanARN, S3DestinationConfiguration: { DataFreshnessInSeconds: 2 } });
check(updated.ChannelDescription.S3DestinationConfiguration.DataFreshnessInSeconds === 2, "UpdateChannel sets DataFreshnessInSeconds");
cd = await waitChannel("updated");
await call("DeleteChannel", { ChannelARN: chanARN });
await call("DescribeChannel", { ChannelARN: chanARN }, "ResourceNotFoundException");
check((await call("ListChannels", {})).ChannelSummaries.length === 0, "ListChannels after DeleteChannel");
await call("DeleteStream", { StreamName: chStream });

await call("DescribeStreamSummary", { StreamName: name + "-missing" }, "ResourceNotFoundException");
await call("DeleteStream", { StreamName: name });
await K.waitUntilStreamNotExists({ client: kin, minDelay: 1, maxWaitTime: 60 }, { StreamName: name });

const all = Object.keys(K).filter((n) => n.endsWith("Command") && n !== "$Command").map((n) => n.slice(0, -7));
const missing = all.filter((op) => !called.has(op));
check(missing.length === 0, "operations not covered: " + missing.join(", "));
console.log(`js session: ${called.size} operations ok (@aws-sdk/client-kinesis ${(await import("@aws-sdk/client-kinesis/package.json", { with: { type: "json" } })).default.version})`);
process.exit(0);
