package kinesis

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func TestCreateDescribeDelete(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.CreateDelay = slowStatus })
	c := ctx(t)
	if _, err := e.client.CreateStream(c, &sdk.CreateStreamInput{StreamName: aws.String("s1"), ShardCount: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	d, err := e.client.DescribeStream(c, &sdk.DescribeStreamInput{StreamName: aws.String("s1")})
	if err != nil {
		t.Fatal(err)
	}
	if d.StreamDescription.StreamStatus != types.StreamStatusCreating || len(d.StreamDescription.Shards) != 0 {
		t.Fatalf("new stream: status %s with %d shards, want CREATING with none", d.StreamDescription.StreamStatus, len(d.StreamDescription.Shards))
	}
	_, err = e.client.PutRecord(c, &sdk.PutRecordInput{StreamName: aws.String("s1"), PartitionKey: aws.String("k"), Data: []byte("x")})
	apiErr(t, err, "ResourceNotFoundException", "Stream s1 under account 000000000000 not found.")
	e.waitStatus("s1", types.StreamStatusActive)

	_, err = e.client.CreateStream(c, &sdk.CreateStreamInput{StreamName: aws.String("s1"), ShardCount: aws.Int32(1)})
	apiErr(t, err, "ResourceInUseException", "Stream s1 under account 000000000000 already exists.")

	d, err = e.client.DescribeStream(c, &sdk.DescribeStreamInput{StreamARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/s1")})
	if err != nil {
		t.Fatal(err)
	}
	sd := d.StreamDescription
	if len(sd.Shards) != 3 || *sd.StreamARN != "arn:aws:kinesis:us-east-1:000000000000:stream/s1" || *sd.RetentionPeriodHours != 24 ||
		sd.StreamModeDetails.StreamMode != types.StreamModeProvisioned || sd.EncryptionType != types.EncryptionTypeNone {
		t.Fatalf("describe: %+v", sd)
	}
	if *sd.Shards[0].HashKeyRange.StartingHashKey != "0" || *sd.Shards[2].HashKeyRange.EndingHashKey != "340282366920938463463374607431768211455" {
		t.Fatalf("hash ranges do not cover the key space: %+v", sd.Shards)
	}
	if n := len(*sd.Shards[0].SequenceNumberRange.StartingSequenceNumber); n != 56 {
		t.Fatalf("starting sequence number has %d digits, want 56", n)
	}

	// Paging through DescribeStream.
	d, err = e.client.DescribeStream(c, &sdk.DescribeStreamInput{StreamName: aws.String("s1"), Limit: aws.Int32(2)})
	if err != nil || len(d.StreamDescription.Shards) != 2 || !*d.StreamDescription.HasMoreShards {
		t.Fatalf("page 1: %v %+v", err, d)
	}
	d, err = e.client.DescribeStream(c, &sdk.DescribeStreamInput{StreamName: aws.String("s1"), Limit: aws.Int32(2), ExclusiveStartShardId: d.StreamDescription.Shards[1].ShardId})
	if err != nil || len(d.StreamDescription.Shards) != 1 || *d.StreamDescription.HasMoreShards || *d.StreamDescription.Shards[0].ShardId != "shardId-000000000002" {
		t.Fatalf("page 2: %v %+v", err, d)
	}

	sum, err := e.client.DescribeStreamSummary(c, &sdk.DescribeStreamSummaryInput{StreamName: aws.String("s1")})
	if err != nil || *sum.StreamDescriptionSummary.OpenShardCount != 3 || *sum.StreamDescriptionSummary.ConsumerCount != 0 {
		t.Fatalf("summary: %v %+v", err, sum)
	}

	if _, err := e.client.DeleteStream(c, &sdk.DeleteStreamInput{StreamName: aws.String("s1")}); err != nil {
		t.Fatal(err)
	}
	sum, err = e.client.DescribeStreamSummary(c, &sdk.DescribeStreamSummaryInput{StreamName: aws.String("s1")})
	if err != nil || sum.StreamDescriptionSummary.StreamStatus != types.StreamStatusDeleting {
		t.Fatalf("after delete: %v, want DELETING", err)
	}
	e.settle()
	_, err = e.client.DescribeStream(c, &sdk.DescribeStreamInput{StreamName: aws.String("s1")})
	apiErr(t, err, "ResourceNotFoundException", "Stream s1 under account 000000000000 not found.")
	_, err = e.client.DeleteStream(c, &sdk.DeleteStreamInput{StreamName: aws.String("s1")})
	apiErr(t, err, "ResourceNotFoundException", "")
}

func TestOnDemandStream(t *testing.T) {
	e := newEnv(t, nil)
	c := ctx(t)
	_, err := e.client.CreateStream(c, &sdk.CreateStreamInput{StreamName: aws.String("od"), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}})
	if err != nil {
		t.Fatal(err)
	}
	e.waitStatus("od", types.StreamStatusActive)
	sum, err := e.client.DescribeStreamSummary(c, &sdk.DescribeStreamSummaryInput{StreamName: aws.String("od")})
	if err != nil || *sum.StreamDescriptionSummary.OpenShardCount != 4 || sum.StreamDescriptionSummary.StreamModeDetails.StreamMode != types.StreamModeOnDemand {
		t.Fatalf("on-demand: %v %+v", err, sum.StreamDescriptionSummary)
	}
	arn := sum.StreamDescriptionSummary.StreamARN
	if _, err := e.client.UpdateStreamMode(c, &sdk.UpdateStreamModeInput{StreamARN: arn, StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned}}); err != nil {
		t.Fatal(err)
	}
	sum, _ = e.client.DescribeStreamSummary(c, &sdk.DescribeStreamSummaryInput{StreamARN: arn})
	if sum.StreamDescriptionSummary.StreamModeDetails.StreamMode != types.StreamModeProvisioned {
		t.Fatalf("mode after update: %s", sum.StreamDescriptionSummary.StreamModeDetails.StreamMode)
	}
	lim, err := e.client.DescribeLimits(c, &sdk.DescribeLimitsInput{})
	if err != nil || *lim.OpenShardCount != 4 || *lim.OnDemandStreamCount != 0 || *lim.OnDemandStreamCountLimit != 50 {
		t.Fatalf("limits: %v %+v", err, lim)
	}
}

func TestValidationMessages(t *testing.T) {
	e := newEnv(t, nil)
	c := ctx(t)
	_, err := e.client.CreateStream(c, &sdk.CreateStreamInput{StreamName: aws.String("v"), ShardCount: aws.Int32(0)})
	apiErr(t, err, "ValidationException", "1 validation error detected: Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1")
	_, err = e.client.CreateStream(c, &sdk.CreateStreamInput{StreamName: aws.String("a b"), ShardCount: aws.Int32(0)})
	apiErr(t, err, "ValidationException", "2 validation errors detected: Value 'a b' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1")
	e.create("v", 1)
	_, err = e.client.GetShardIterator(c, &sdk.GetShardIteratorInput{StreamName: aws.String("v"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: "BOGUS"})
	apiErr(t, err, "ValidationException", "1 validation error detected: Value 'BOGUS' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER, TRIM_HORIZON]")
	_, err = e.client.PutRecords(c, &sdk.PutRecordsInput{StreamName: aws.String("v"), Records: []types.PutRecordsRequestEntry{{Data: []byte("x"), PartitionKey: aws.String("")}}})
	apiErr(t, err, "ValidationException", "1 validation error detected: Value '' at 'records.1.member.partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1")
	_, err = e.client.IncreaseStreamRetentionPeriod(c, &sdk.IncreaseStreamRetentionPeriodInput{StreamName: aws.String("v"), RetentionPeriodHours: aws.Int32(12)})
	apiErr(t, err, "InvalidArgumentException", "Minimum allowed retention period is 24 hours. Requested retention period (12 hours) is too short.")
}

func TestListStreamsPaging(t *testing.T) {
	e := newEnv(t, nil)
	c := ctx(t)
	for _, n := range []string{"c", "a", "b"} {
		e.create(n, 1)
	}
	var names []string
	in := &sdk.ListStreamsInput{Limit: aws.Int32(2)}
	for {
		out, err := e.client.ListStreams(c, in)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, out.StreamNames...)
		if len(out.StreamSummaries) != len(out.StreamNames) || *out.StreamSummaries[0].StreamARN == "" {
			t.Fatalf("summaries: %+v", out.StreamSummaries)
		}
		if !*out.HasMoreStreams {
			break
		}
		in = &sdk.ListStreamsInput{NextToken: out.NextToken}
	}
	if len(names) != 3 || names[0] != "a" || names[2] != "c" {
		t.Fatalf("listed %v", names)
	}
	out, err := e.client.ListStreams(c, &sdk.ListStreamsInput{ExclusiveStartStreamName: aws.String("a")})
	if err != nil || len(out.StreamNames) != 2 {
		t.Fatalf("after a: %v %v", err, out.StreamNames)
	}
	_, err = e.client.ListStreams(c, &sdk.ListStreamsInput{NextToken: aws.String("garbage")})
	apiErr(t, err, "InvalidArgumentException", "")
	tok := e.h.sealToken(tokListStreams, pageToken{After: "a"})
	e.clock.Advance(6 * 60 * 1e9)
	_, err = e.client.ListStreams(c, &sdk.ListStreamsInput{NextToken: &tok})
	apiErr(t, err, "ExpiredNextTokenException", "")
}

func TestTagsRetentionEncryptionMonitoring(t *testing.T) {
	e := newEnv(t, nil)
	c := ctx(t)
	e.create("t", 1)
	name := aws.String("t")
	if _, err := e.client.AddTagsToStream(c, &sdk.AddTagsToStreamInput{StreamName: name, Tags: map[string]string{"b": "2", "a": "1", "c": "3"}}); err != nil {
		t.Fatal(err)
	}
	lt, err := e.client.ListTagsForStream(c, &sdk.ListTagsForStreamInput{StreamName: name, Limit: aws.Int32(2)})
	if err != nil || len(lt.Tags) != 2 || *lt.Tags[0].Key != "a" || !*lt.HasMoreTags {
		t.Fatalf("tags: %v %+v", err, lt)
	}
	lt, _ = e.client.ListTagsForStream(c, &sdk.ListTagsForStreamInput{StreamName: name, ExclusiveStartTagKey: aws.String("b")})
	if len(lt.Tags) != 1 || *lt.Tags[0].Key != "c" || *lt.HasMoreTags {
		t.Fatalf("tags after b: %+v", lt.Tags)
	}
	if _, err := e.client.RemoveTagsFromStream(c, &sdk.RemoveTagsFromStreamInput{StreamName: name, TagKeys: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	arn := aws.String(e.h.streamARN("t"))
	if _, err := e.client.TagResource(c, &sdk.TagResourceInput{ResourceARN: arn, Tags: map[string]string{"d": "4"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.UntagResource(c, &sdk.UntagResourceInput{ResourceARN: arn, TagKeys: []string{"b"}}); err != nil {
		t.Fatal(err)
	}
	lr, err := e.client.ListTagsForResource(c, &sdk.ListTagsForResourceInput{ResourceARN: arn})
	if err != nil || len(lr.Tags) != 2 || *lr.Tags[0].Key != "c" || *lr.Tags[1].Value != "4" {
		t.Fatalf("resource tags: %v %+v", err, lr)
	}
	many := map[string]string{}
	for i := 0; i < 10; i++ {
		many["k"+itoa(i)] = "v"
	}
	for i := 0; i < 5; i++ {
		m := map[string]string{}
		for k := range many {
			m[k+itoa(i)] = "v"
		}
		_, err = e.client.AddTagsToStream(c, &sdk.AddTagsToStreamInput{StreamName: name, Tags: m})
	}
	apiErr(t, err, "InvalidArgumentException", "Failed to add tags to stream t under account 000000000000 because a given stream cannot have more than 50 tags associated with it.")

	if _, err := e.client.IncreaseStreamRetentionPeriod(c, &sdk.IncreaseStreamRetentionPeriodInput{StreamName: name, RetentionPeriodHours: aws.Int32(48)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.IncreaseStreamRetentionPeriod(c, &sdk.IncreaseStreamRetentionPeriodInput{StreamName: name, RetentionPeriodHours: aws.Int32(36)})
	apiErr(t, err, "InvalidArgumentException", "Requested retention period (36 hours) for stream t can not be shorter than existing retention period (48 hours). Use DecreaseRetentionPeriod API.")
	if _, err := e.client.DecreaseStreamRetentionPeriod(c, &sdk.DecreaseStreamRetentionPeriodInput{StreamName: name, RetentionPeriodHours: aws.Int32(30)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.DecreaseStreamRetentionPeriod(c, &sdk.DecreaseStreamRetentionPeriodInput{StreamName: name, RetentionPeriodHours: aws.Int32(40)})
	apiErr(t, err, "InvalidArgumentException", "")

	if _, err := e.client.StartStreamEncryption(c, &sdk.StartStreamEncryptionInput{StreamName: name, EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/aws/kinesis")}); err != nil {
		t.Fatal(err)
	}
	sum, _ := e.client.DescribeStreamSummary(c, &sdk.DescribeStreamSummaryInput{StreamName: name})
	if sum.StreamDescriptionSummary.EncryptionType != types.EncryptionTypeKms || *sum.StreamDescriptionSummary.KeyId != "alias/aws/kinesis" || *sum.StreamDescriptionSummary.RetentionPeriodHours != 30 {
		t.Fatalf("after encryption: %+v", sum.StreamDescriptionSummary)
	}
	pr, err := e.client.PutRecord(c, &sdk.PutRecordInput{StreamName: name, PartitionKey: aws.String("k"), Data: []byte("x")})
	if err != nil || pr.EncryptionType != types.EncryptionTypeKms {
		t.Fatalf("put on encrypted stream: %v %+v", err, pr)
	}
	if _, err := e.client.StopStreamEncryption(c, &sdk.StopStreamEncryptionInput{StreamName: name, EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/aws/kinesis")}); err != nil {
		t.Fatal(err)
	}

	mo, err := e.client.EnableEnhancedMonitoring(c, &sdk.EnableEnhancedMonitoringInput{StreamName: name, ShardLevelMetrics: []types.MetricsName{types.MetricsNameIncomingBytes}})
	if err != nil || len(mo.CurrentShardLevelMetrics) != 0 || len(mo.DesiredShardLevelMetrics) != 1 {
		t.Fatalf("enable monitoring: %v %+v", err, mo)
	}
	mo, err = e.client.EnableEnhancedMonitoring(c, &sdk.EnableEnhancedMonitoringInput{StreamName: name, ShardLevelMetrics: []types.MetricsName{types.MetricsNameAll}})
	if err != nil || len(mo.DesiredShardLevelMetrics) != 7 {
		t.Fatalf("enable ALL: %v %+v", err, mo)
	}
	dm, err := e.client.DisableEnhancedMonitoring(c, &sdk.DisableEnhancedMonitoringInput{StreamName: name, ShardLevelMetrics: []types.MetricsName{types.MetricsNameIncomingBytes}})
	if err != nil || len(dm.CurrentShardLevelMetrics) != 7 || len(dm.DesiredShardLevelMetrics) != 6 {
		t.Fatalf("disable: %v %+v", err, dm)
	}
	d, _ := e.client.DescribeStream(c, &sdk.DescribeStreamInput{StreamName: name})
	if len(d.StreamDescription.EnhancedMonitoring[0].ShardLevelMetrics) != 6 {
		t.Fatalf("describe monitoring: %+v", d.StreamDescription.EnhancedMonitoring)
	}
}
