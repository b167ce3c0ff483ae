package kinesis

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/jobs"
	s3sink "github.com/runnel-dev/runnel/sinks/s3"
)

// delivered reads every published object of the bucket and returns the
// "n" field of each row, sorted: a duplicate shows twice.
func delivered(t *testing.T, gw *testsrv.S3Process) []string {
	t.Helper()
	var out []string
	for _, k := range gw.Objects(t, "lake", "") {
		if strings.HasPrefix(k, s3sink.DefaultStagingPrefix) {
			continue
		}
		rows, err := s3sink.ReadObject(k, gw.Get(t, "lake", k))
		if err != nil {
			t.Fatalf("object %s: %v", k, err)
		}
		for _, r := range rows {
			out = append(out, fmt.Sprint(r["n"]))
		}
	}
	sort.Strings(out)
	return out
}

func waitDelivered(t *testing.T, gw *testsrv.S3Process, n int) []string {
	t.Helper()
	var got []string
	testutil.Within(60*time.Second, func() bool { got = delivered(t, gw); return len(got) >= n })
	return got
}

// TestChannelDeliversToS3 creates a channel with the Go SDK, finds the
// stream's records as gzip'd JSON lines in versitygw, lists, updates
// (the delivery job restarts from a savepoint: nothing twice) and deletes
// it.
func TestChannelDeliversToS3(t *testing.T) {
	e, gw, mgr := deliveryEnv(t)
	put := func(from, to int) { e.putN("clicks", from, to) }
	put(0, 10)
	out, err := e.createDelivery("clicks-to-lake", "clicks")
	if err != nil {
		t.Fatal(err)
	}
	arn := out.ChannelDescription.ChannelARN
	d, err := e.client.DescribeChannel(ctx(t), &sdk.DescribeChannelInput{ChannelARN: arn})
	if err != nil {
		t.Fatal(err)
	}
	cd := d.ChannelDescription
	if cd.ChannelStatus != types.ChannelStatusActive || aws.ToString(cd.ChannelName) != "clicks-to-lake" ||
		aws.ToString(cd.S3DestinationConfiguration.StorageConfiguration.BucketARN) != "arn:aws:s3:::lake" ||
		len(cd.StreamConfigurationList) != 1 || aws.ToString(cd.StreamConfigurationList[0].StreamARN) != e.h.streamARN("clicks") {
		t.Fatalf("DescribeChannel = %+v (reason %q)", cd, aws.ToString(cd.ChannelStatusReason))
	}
	want := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	if got := waitDelivered(t, gw, 10); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	for _, k := range gw.Objects(t, "lake", "dt=") {
		if !strings.HasSuffix(k, ".jsonl.gz") {
			t.Errorf("object %s: GZIP compression should give .jsonl.gz", k)
		}
	}

	l, err := e.client.ListChannels(ctx(t), &sdk.ListChannelsInput{})
	if err != nil || len(l.ChannelSummaries) != 1 || aws.ToString(l.ChannelSummaries[0].ChannelARN) != aws.ToString(arn) ||
		l.ChannelSummaries[0].ChannelDestinationType != types.ChannelDestinationTypeS3 {
		t.Fatalf("ListChannels = %+v, %v", l, err)
	}
	l, err = e.client.ListChannels(ctx(t), &sdk.ListChannelsInput{StreamFilter: []types.StreamFilter{{StreamARN: aws.String(e.h.streamARN("other"))}}})
	if err != nil || len(l.ChannelSummaries) != 0 {
		t.Fatalf("ListChannels of another stream = %+v, %v", l, err)
	}

	u, err := e.client.UpdateChannel(ctx(t), &sdk.UpdateChannelInput{ChannelARN: arn,
		S3DestinationConfiguration: &types.S3DestinationUpdateInput{DataFreshnessInSeconds: aws.Int32(2)}})
	if err != nil {
		t.Fatal(err)
	}
	if f := aws.ToInt32(u.ChannelDescription.S3DestinationConfiguration.DataFreshnessInSeconds); f != 2 {
		t.Fatalf("UpdateChannel: DataFreshnessInSeconds %d, want 2", f)
	}
	put(10, 15)
	want = append(want, "10", "11", "12", "13", "14")
	sort.Strings(want)
	if got := waitDelivered(t, gw, 15); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after UpdateChannel delivered %v, want %v", got, want)
	}

	if _, err := e.client.DeleteChannel(ctx(t), &sdk.DeleteChannelInput{ChannelARN: arn}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.DescribeChannel(ctx(t), &sdk.DescribeChannelInput{ChannelARN: arn})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("DescribeChannel after DeleteChannel: %v, want ResourceNotFoundException", err)
	}
	if info, err := mgr.Get("channel-clicks-to-lake"); err == nil && info.State == "running" {
		t.Fatal("the delivery job still runs after DeleteChannel")
	}
}

// deliveryEnv is a handler with channels on a real job manager, delivering
// to versitygw's bucket "lake", and a stream "clicks" of 2 shards.
func deliveryEnv(t *testing.T) (*env, *testsrv.S3Process, *jobs.Manager) {
	e, gw, mgr, _ := restartableDelivery(t)
	return e, gw, mgr
}

// restartableDelivery is deliveryEnv with a restart of the job manager
// and the channels (as runnel serve starts them) that returns the new
// manager.
func restartableDelivery(t *testing.T) (*env, *testsrv.S3Process, *jobs.Manager, func() *jobs.Manager) {
	t.Helper()
	return restartableDeliveryWith(t, jobs.Restart{})
}

// restartableDeliveryWith is restartableDelivery with the delivery jobs'
// restart strategy rs (the channels' own when rs is zero).
func restartableDeliveryWith(t *testing.T, rs jobs.Restart) (*env, *testsrv.S3Process, *jobs.Manager, func() *jobs.Manager) {
	t.Helper()
	gw := testsrv.StartS3(t, "lake")
	for _, kv := range gw.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	e := newEnv(t, nil)
	dir := t.TempDir()
	var mgr *jobs.Manager
	open := func() *jobs.Manager {
		var err error
		mgr, err = jobs.NewManager(jobs.ManagerConfig{Store: e.store, Dir: filepath.Join(dir, "jobs"),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		<-mgr.Booted() // its jobs start in the background
		if err := EnableChannels(e.h, ChannelOptions{Jobs: mgr, File: filepath.Join(dir, "channels.json"),
			S3Endpoint: gw.Endpoint, S3PathStyle: true, Restart: rs}); err != nil {
			t.Fatal(err)
		}
		return mgr
	}
	open()
	t.Cleanup(func() { mgr.Close() })
	e.create("clicks", 2)
	restart := func() *jobs.Manager {
		channelSets.Delete(e.h)
		mgr.Close()
		return open()
	}
	return e, gw, mgr, restart
}

// putN puts records {"n": from} … {"n": to-1} into stream.
func (e *env) putN(stream string, from, to int) {
	e.t.Helper()
	var recs []types.PutRecordsRequestEntry
	for i := from; i < to; i++ {
		recs = append(recs, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint(i)), Data: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	if _, err := e.client.PutRecords(ctx(e.t), &sdk.PutRecordsInput{StreamName: aws.String(stream), Records: recs}); err != nil {
		e.t.Fatal(err)
	}
}

// createDelivery creates channel name from stream to the bucket "lake",
// gzip'd JSON lines every second.
func (e *env) createDelivery(name, stream string) (*sdk.CreateChannelOutput, error) {
	return e.client.CreateChannel(ctx(e.t), &sdk.CreateChannelInput{
		ChannelName:             aws.String(name),
		ServiceExecutionRoleARN: aws.String("arn:aws:iam::000000000000:role/delivery"),
		StreamConfigurationList: []types.ChannelStreamConfiguration{{StreamARN: aws.String(e.h.streamARN(stream)),
			RecordConfiguration: &types.RecordConfiguration{RecordFormatType: types.RecordFormatTypeJson}}},
		S3DestinationConfiguration: &types.S3DestinationConfiguration{DataFreshnessInSeconds: aws.Int32(1),
			StorageConfiguration: &types.S3StorageConfiguration{BucketARN: aws.String("arn:aws:s3:::lake"),
				CompressionType: types.S3CompressionTypeGzip, ExpectedBucketOwner: aws.String("000000000000")}},
	})
}

// channelStatus is DescribeChannel's status and reason.
func (e *env) channelStatus(arn *string) (types.ChannelStatus, string) {
	e.t.Helper()
	d, err := e.client.DescribeChannel(ctx(e.t), &sdk.DescribeChannelInput{ChannelARN: arn})
	if err != nil {
		e.t.Fatal(err)
	}
	return d.ChannelDescription.ChannelStatus, aws.ToString(d.ChannelDescription.ChannelStatusReason)
}

func seq(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprint(i))
	}
	sort.Strings(out)
	return out
}

// TestChannelHealsAfterS3Outage: a channel whose delivery job failed (the
// bucket's server gone past the S3 sink's retry window) stays ACTIVE,
// saying that delivery is retried, and delivers every record once by
// itself when the server is back, with no UpdateChannel; also when the
// server restarts during the outage (the restart countdown is not kept,
// the job is failed on disk: the channels start it again).
func TestChannelHealsAfterS3Outage(t *testing.T) {
	for _, serverRestart := range []bool{false, true} {
		t.Run(fmt.Sprintf("server-restart=%v", serverRestart), func(t *testing.T) {
			e, gw, _, restart := restartableDelivery(t)
			arn, got := deliverClicks(t, e, gw)
			if fmt.Sprint(got) != fmt.Sprint(seq(0, 10)) {
				t.Fatalf("delivered %v", got)
			}
			gw.Kill()
			e.putN("clicks", 10, 15)
			waitRetried(t, e, arn, "the bucket's server gone")
			if serverRestart {
				// The channels hand the job, failed on disk, to its
				// strategy as the server starts (before any DescribeChannel).
				mgr := restart()
				if info, err := mgr.Get("channel-c"); err != nil || info.State != "failed" || info.Restarting == nil || info.Restarting.Attempt != 1 {
					t.Fatalf("the delivery job after a restart during the outage: %s %q restarting %+v, %v; want attempt 1 pending",
						info.State, info.Reason, info.Restarting, err)
				}
				waitRetried(t, e, arn, "a restart of the server during the outage")
			}
			gw.Start()
			e.putN("clicks", 15, 20)
			if got := waitDelivered(t, gw, 20); fmt.Sprint(got) != fmt.Sprint(seq(0, 20)) {
				t.Fatalf("after the outage delivered %v, want %v", got, seq(0, 20))
			}
			if st, reason := e.channelStatus(arn); st != types.ChannelStatusActive || reason != "" {
				t.Fatalf("after the outage: %s %q, want ACTIVE", st, reason)
			}
		})
	}
}

// deliverClicks puts records 0 to 9 in stream clicks, creates channel c
// delivering it to the bucket of gw, and waits until the 10 records are
// delivered; it returns the channel's ARN and what waitDelivered read.
func deliverClicks(t *testing.T, e *env, gw *testsrv.S3Process) (arn *string, got []string) {
	t.Helper()
	e.putN("clicks", 0, 10)
	out, err := e.createDelivery("c", "clicks")
	if err != nil {
		t.Fatal(err)
	}
	return out.ChannelDescription.ChannelARN, waitDelivered(t, gw, 10)
}

// waitRetried waits until the channel arn says that its delivery is
// retried, and checks that it is ACTIVE meanwhile, never FAILED.
func waitRetried(t *testing.T, e *env, arn *string, after string) {
	t.Helper()
	var st types.ChannelStatus
	var reason string
	if !testutil.Within(90*time.Second, func() bool {
		st, reason = e.channelStatus(arn)
		if st != types.ChannelStatusActive {
			t.Fatalf("after %s: %s %q, want ACTIVE", after, st, reason)
		}
		return strings.Contains(reason, "delivery is retried")
	}) {
		t.Fatalf("after %s: %s %q, want ACTIVE saying that delivery is retried", after, st, reason)
	}
	if !strings.Contains(reason, "sink s3") && !strings.Contains(reason, "s3 sink") {
		t.Errorf("after %s the reason does not name the S3 sink: %q", after, reason)
	}
	t.Logf("after %s: %s %q", after, st, reason)
}

// TestChannelUpdateRepairsFailed: a channel whose delivery job failed and
// used up its restart attempts (here 1) is FAILED, saying so, and stays
// FAILED when the bucket's server is back; UpdateChannel repairs it: the
// job starts again from its latest checkpoint, and every record is
// delivered once. After a restart of the server the channel is ACTIVE and
// delivers on, its job still its own.
func TestChannelUpdateRepairsFailed(t *testing.T) {
	e, gw, _, restart := restartableDeliveryWith(t, jobs.Restart{Strategy: jobs.RestartFixedDelay, Delay: 200 * time.Millisecond, Attempts: 1})
	arn, got := deliverClicks(t, e, gw)
	if fmt.Sprint(got) != fmt.Sprint(seq(0, 10)) {
		t.Fatalf("delivered %v", got)
	}
	gw.Kill()
	e.putN("clicks", 10, 15)
	var st types.ChannelStatus
	var reason string
	if !testutil.Within(90*time.Second, func() bool { st, reason = e.channelStatus(arn); return st == types.ChannelStatusFailed }) {
		t.Fatalf("the channel with its bucket's server gone: %s %q, want FAILED", st, reason)
	}
	t.Logf("FAILED: %s", reason)
	if !strings.Contains(reason, "restart attempts used up (1 of 1") || !strings.Contains(reason, "UpdateChannel") {
		t.Errorf("FAILED for %q, want its restart attempts used up and UpdateChannel named", reason)
	}
	gw.Start()
	time.Sleep(time.Second) // no restart comes
	if st, reason := e.channelStatus(arn); st != types.ChannelStatusFailed {
		t.Fatalf("with the bucket's server back and the attempts used up: %s %q, want FAILED", st, reason)
	}
	if _, err := e.client.UpdateChannel(ctx(t), &sdk.UpdateChannelInput{ChannelARN: arn}); err != nil {
		t.Fatalf("UpdateChannel of a FAILED channel: %v", err)
	}
	if st, reason := e.channelStatus(arn); st != types.ChannelStatusActive {
		t.Fatalf("after UpdateChannel: %s %q", st, reason)
	}
	e.putN("clicks", 15, 20)
	if got := waitDelivered(t, gw, 20); fmt.Sprint(got) != fmt.Sprint(seq(0, 20)) {
		t.Fatalf("after the repair delivered %v, want %v", got, seq(0, 20))
	}

	mgr := restart()
	if st, reason := e.channelStatus(arn); st != types.ChannelStatusActive {
		t.Fatalf("after a restart: %s %q", st, reason)
	}
	if info, err := mgr.Get("channel-c"); err != nil || info.Owner != aws.ToString(arn) {
		t.Fatalf("the delivery job after a restart: %+v, %v", info, err)
	}
	e.putN("clicks", 20, 25)
	if got := waitDelivered(t, gw, 25); fmt.Sprint(got) != fmt.Sprint(seq(0, 25)) {
		t.Fatalf("after a restart delivered %v, want %v", got, seq(0, 25))
	}
}

// TestChannelStreamRecreated deletes a channel's stream around the
// Kinesis API (as the REST API can) and creates it again at once with new
// records: the delivery job fails on the deleted stream rather than read
// the new one, its restart strategy does not start it again (on the new
// stream), the channel is FAILED naming it, UpdateChannel does not start
// it on the new stream, and only the old stream's records are in the
// bucket.
func TestChannelStreamRecreated(t *testing.T) {
	e, gw, mgr := deliveryEnv(t)
	arn, _ := deliverClicks(t, e, gw)
	if err := e.store.DeleteStream("clicks"); err != nil {
		t.Fatal(err)
	}
	e.create("clicks", 2)
	e.putN("clicks", 100, 110)
	var info jobs.Info
	var err error
	if !testutil.Within(60*time.Second, func() bool {
		info, err = mgr.Get("channel-c")
		return err == nil && info.State == "failed" && strings.Contains(info.Reason, "not restarted: stream clicks (created")
	}) {
		t.Fatalf("the delivery job of a deleted stream: %s %q, %v; want failed, not restarted", info.State, info.Reason, err)
	}
	if st, reason := e.channelStatus(arn); st != types.ChannelStatusFailed || !strings.Contains(reason, "stream clicks (created") || !strings.Contains(reason, "was deleted") {
		t.Fatalf("DescribeChannel: %s %q", st, reason)
	}
	_, err = e.client.UpdateChannel(ctx(t), &sdk.UpdateChannelInput{ChannelARN: arn})
	var inUse *types.ResourceInUseException
	if !errors.As(err, &inUse) || !strings.Contains(err.Error(), "was deleted") {
		t.Fatalf("UpdateChannel of a deleted stream's channel: %v, want ResourceInUseException", err)
	}
	if info, err := mgr.Get("channel-c"); err != nil || info.State == "running" {
		t.Fatalf("the delivery job after UpdateChannel: %+v, %v", info, err)
	}
	if got := delivered(t, gw); fmt.Sprint(got) != fmt.Sprint(seq(0, 10)) {
		t.Fatalf("delivered %v, want the old stream's %v", got, seq(0, 10))
	}
	// The new stream is not the channel's: it is deleted as any other.
	if _, err := e.client.DeleteStream(ctx(t), &sdk.DeleteStreamInput{StreamName: aws.String("clicks")}); err != nil {
		t.Fatalf("DeleteStream of the new stream: %v", err)
	}
}

// TestDeleteChannelSettlesStaged: DeleteChannel of a channel whose
// delivery job is not running (a server killed during an earlier
// DeleteChannel leaves it stopped, as a user's stop does) with an
// object staged for an epoch whose checkpoint never completed leaves
// nothing under the staging prefix: the job starts once more to settle
// what it staged before it goes, and the stray object is not published.
func TestDeleteChannelSettlesStaged(t *testing.T) {
	e, gw, mgr := deliveryEnv(t)
	arn, _ := deliverClicks(t, e, gw)
	if err := mgr.Stop("channel-c"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(`{"n":999}` + "\n"))
	zw.Close()
	stray := s3sink.DefaultStagingPrefix + "channel-c/s3/0123456789ab/0000000099/0-000000.jsonl.gz"
	if _, err := gw.Client().PutObject(ctx(t), &s3.PutObjectInput{Bucket: aws.String("lake"), Key: aws.String(stray),
		Body: bytes.NewReader(buf.Bytes())}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.DeleteChannel(ctx(t), &sdk.DeleteChannelInput{ChannelARN: arn}); err != nil {
		t.Fatal(err)
	}
	if staged := gw.Objects(t, "lake", s3sink.DefaultStagingPrefix); len(staged) > 0 {
		t.Errorf("staged objects left after DeleteChannel: %v", staged)
	}
	if got := delivered(t, gw); fmt.Sprint(got) != fmt.Sprint(seq(0, 10)) {
		t.Errorf("delivered %v, want %v", got, seq(0, 10))
	}
}
