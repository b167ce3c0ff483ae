package upgrade

import (
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// The channel of the fixtures delivers the stream plain to the bucket
// lake of a versitygw the test starts.
const channelBucket = "lake"

// channelFlags are the flags and environment of a server whose channels
// deliver to gw.
func channelFlags(gw *testsrv.S3Process) (flags, env []string) {
	return []string{"--channels-s3-endpoint", gw.Endpoint}, gw.Env()
}

// makeChannel creates the channel plain-to-lake, delivering plain every
// minute (so that the counts job, checkpointing every second, is the one
// the failpoint of crashAt kills), and returns its description; a binary
// without channels makes none.
func makeChannel(t *testing.T, a *api) map[string]any {
	arn := a.kinesis("DescribeStreamSummary", map[string]any{"StreamName": "plain"})["StreamDescriptionSummary"].(map[string]any)["StreamARN"]
	st, out := a.kinesisTry("CreateChannel", map[string]any{
		"ChannelName":             "plain-to-lake",
		"ServiceExecutionRoleARN": "arn:aws:iam::000000000000:role/delivery",
		"StreamConfigurationList": []any{map[string]any{"StreamARN": arn, "RecordConfiguration": map[string]any{"RecordFormatType": "JSON"}}},
		"S3DestinationConfiguration": map[string]any{"DataFreshnessInSeconds": 60, "StorageConfiguration": map[string]any{
			"BucketARN": "arn:aws:s3:::" + channelBucket, "CompressionType": "GZIP", "ExpectedBucketOwner": "000000000000"}},
	})
	if st != 200 {
		t.Logf("this binary makes no channel: %d %v", st, out)
		return nil
	}
	carn := out["ChannelDescription"].(map[string]any)["ChannelARN"]
	var d map[string]any
	if !testutil.Within(60*time.Second, func() bool {
		d = a.kinesis("DescribeChannel", map[string]any{"ChannelARN": carn})["ChannelDescription"].(map[string]any)
		return d["ChannelStatus"] == "ACTIVE"
	}) {
		t.Fatalf("channel plain-to-lake is not ACTIVE: %v", d)
	}
	return d
}

// checkChannel checks that the channel is there as it was made. Its
// delivery is not checked: the delivery job's file names the S3 endpoint
// of the server that made it, and its checkpoints objects staged in that
// endpoint's bucket, neither of which the fixture keeps.
func checkChannel(t *testing.T, a *api, e *Expect) {
	if e.Channel == nil {
		return
	}
	st, out := a.kinesisTry("DescribeChannel", map[string]any{"ChannelARN": e.Channel["ChannelARN"]})
	if st != 200 {
		t.Errorf("channel plain-to-lake after the upgrade: DescribeChannel answers %d %v", st, out)
		return
	}
	d := out["ChannelDescription"].(map[string]any)
	for _, k := range []string{"ChannelARN", "ChannelName", "StreamConfigurationList", "S3DestinationConfiguration", "ChannelCreationTimestamp"} {
		if !same(d[k], e.Channel[k]) {
			t.Errorf("channel plain-to-lake: DescribeChannel's %s is %v after the upgrade, %v before", k, d[k], e.Channel[k])
		}
	}
}
