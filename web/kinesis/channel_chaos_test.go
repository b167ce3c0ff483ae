//go:build unix

package kinesis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	s3sink "github.com/runnel-dev/runnel/sinks/s3"
)

// The channels under chaos: `runnel serve` delivering three streams to
// versitygw through channels made with the Go SDK, while versitygw and
// the server are killed, paused and started again, the channels updated,
// and one channel deleted and created again with its stream.

// chaosChannels are the channels of TestChannelsChaos and their streams;
// alpha and beta exist the whole time, gamma is deleted and created
// again (its stream with it).
var chaosChannels = []struct{ name, stream string }{{"alpha", "sa"}, {"beta", "sb"}, {"gamma", "sg"}}

// chaos is the state of TestChannelsChaos: the servers, what the
// producer sent, and gamma's incarnation.
type chaos struct {
	t   *testing.T
	srv *testbin.Server
	gw  *testsrv.S3Process
	cl  *sdk.Client
	// rcl is cl with retries of what the SDK deems retryable (a loopback
	// connection reset on a loaded machine), for the calls that only read.
	rcl *sdk.Client

	mu sync.Mutex
	// sent counts the times each record (stream, incarnation, n) was
	// sent in a PutRecords: a put that failed as the server died may
	// have been stored, so a record is in its stream at most that often.
	sent map[chaosRec]int
	// acked holds the records a PutRecords acknowledged.
	acked map[chaosRec]bool
	// gammaInc is the incarnation of sg and gamma; the producer puts to
	// sg only while gammaLive.
	gammaInc  int
	gammaLive bool
	puts      int
}

// chaosRec is one record as put: its stream, the incarnation of the
// stream (0 but for sg) and its number.
type chaosRec struct {
	S string
	I int
	N int
}

func (r chaosRec) String() string { return fmt.Sprintf("%s/%d/%d", r.S, r.I, r.N) }

// TestChannelsChaos is a randomized test (-seed replays its plan) of
// channels on the real binary: records are put with the SDK at a steady
// rate into three streams, each delivered by a channel to versitygw's
// bucket, while at random versitygw is SIGKILLed and started again or
// paused with SIGSTOP for a few seconds (shorter than the sink's retry
// window: the channels stay ACTIVE), the server is SIGKILLed and started
// again (also in the middle of an UpdateChannel, whose client then sends
// it again, or of gamma's re-creation), a channel's
// DataFreshnessInSeconds is updated (also with versitygw paused), and
// gamma is deleted with its stream and both created again (DeleteStream
// first is refused while gamma reads it; versitygw is down meanwhile at
// times). An event that starts delivery jobs while versitygw is down
// (the server's start, CreateChannel) may fail them at once: their
// restart strategy starts them again, and the channels stay ACTIVE. Once
// per run versitygw stays down longer than the retry window: every
// channel must say (ACTIVE) that its delivery, failed naming the S3 sink,
// is retried, also across a restart of the server during the outage at
// times, and deliver again once versitygw is back. No UpdateChannel
// repairs anything: a channel FAILED at any point fails the test.
//
// The model, once everything has settled: the published objects of each
// channel hold each record of its stream exactly once (the records read
// back from the stream with GetRecords: a put that failed as the server
// died may have stored a record anyway, and a retry then stores it
// twice); gamma's earlier incarnations delivered no record more often
// than it was sent; every acknowledged record is in its stream; and once
// every channel is deleted (the server killed during each DeleteChannel,
// which the client then sends again) nothing is left under the staging
// prefix.
func TestChannelsChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs runnel serve and versitygw, killing both; skipped in -short mode")
	}
	rng := testutil.Rand(t, 0)
	gw := testsrv.StartS3(t, "lake")
	srv := testbin.Start(t, testbin.Options{LogLevel: "warn", Env: gw.Env(),
		Flags: []string{"--channels-s3-endpoint", gw.Endpoint}})
	c := &chaos{t: t, srv: srv, gw: gw, cl: testsrv.KinesisClient(srv.URL), rcl: newClient(srv.URL), sent: map[chaosRec]int{}, acked: map[chaosRec]bool{}}
	for _, ch := range chaosChannels {
		c.createStream(ch.stream)
		c.createChannel(ch.name, ch.stream, 1+rng.Int32N(2))
	}
	c.gammaLive = true

	stop := make(chan struct{})
	produced := make(chan struct{})
	go func() { defer close(produced); c.produce(stop) }()
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-produced
	}()

	events := []string{"gw-kill", "gw-pause", "srv-kill", "update", "churn", "srv-kill-gw-down", "update-gw-down",
		"churn-srv-kill", "update-srv-kill"}
	var plan []string
	for range 6 + rng.IntN(3) {
		plan = append(plan, events[rng.IntN(len(events))])
	}
	plan = slices.Insert(plan, rng.IntN(len(plan)+1), "gw-outage")
	t.Logf("plan: %v", plan)
	for _, ev := range plan {
		time.Sleep(time.Duration(300+rng.IntN(1000)) * time.Millisecond)
		began := time.Now()
		s3Down := c.do(rng, ev)
		t.Logf("  %s took %v", ev, time.Since(began).Round(time.Millisecond))
		if ev != "gw-outage" {
			c.wantActive(ev, s3Down)
		}
	}
	time.Sleep(2 * time.Second)
	close(stop)
	<-produced
	c.mu.Lock()
	t.Logf("%d PutRecords acknowledged; gamma's incarnation %d", c.puts, c.gammaInc)
	c.mu.Unlock()

	c.settleAndCheck(rng)
}

// do carries out one event of the plan and says whether it started
// delivery jobs with versitygw down: a job's start makes 3 attempts to
// recover its staged objects, so such an event may fail channels.
func (c *chaos) do(rng *rand.Rand, ev string) (s3Down bool) {
	t := c.t
	switch ev {
	case "gw-kill":
		down := time.Duration(200+rng.IntN(3000)) * time.Millisecond
		t.Logf("versitygw killed for %v", down)
		c.gw.Kill()
		time.Sleep(down)
		c.gw.Start()
	case "gw-pause":
		down := time.Duration(200+rng.IntN(3000)) * time.Millisecond
		t.Logf("versitygw paused for %v", down)
		c.gw.Signal(syscall.SIGSTOP)
		time.Sleep(down)
		c.gw.Signal(syscall.SIGCONT)
	case "srv-kill":
		t.Log("runnel serve killed and started again")
		c.srv.Kill()
		c.srv.Start()
	case "update":
		name := chaosChannels[rng.IntN(2)].name
		f := 1 + rng.Int32N(3)
		t.Logf("UpdateChannel %s: DataFreshnessInSeconds %d", name, f)
		if _, err := c.cl.UpdateChannel(c.ctx(), &sdk.UpdateChannelInput{ChannelARN: c.arn(name),
			S3DestinationConfiguration: &types.S3DestinationUpdateInput{DataFreshnessInSeconds: aws.Int32(f)}}); err != nil {
			t.Fatalf("UpdateChannel %s: %v", name, err)
		}
	case "churn":
		return c.churn(rng, false)
	case "churn-srv-kill":
		// The server is killed in the middle of a churn; once it is
		// back, the churn is done again from the start.
		c.mu.Lock()
		c.gammaLive = false
		c.mu.Unlock()
		c.killDuring(rng, "gamma's churn", func(ctx context.Context) {
			c.cl.DeleteChannel(ctx, &sdk.DeleteChannelInput{ChannelARN: c.arn("gamma")})
			c.cl.DeleteStream(ctx, &sdk.DeleteStreamInput{StreamName: aws.String("sg")})
			time.Sleep(400 * time.Millisecond) // the stream's DELETING
			c.cl.CreateStream(ctx, &sdk.CreateStreamInput{StreamName: aws.String("sg"), ShardCount: aws.Int32(2)})
			time.Sleep(400 * time.Millisecond) // its CREATING
			c.cl.CreateChannel(ctx, c.channelInput("gamma", "sg", 1))
		})
		return c.churn(rng, true)
	case "update-srv-kill":
		name := chaosChannels[rng.IntN(2)].name
		f := 1 + rng.Int32N(3)
		in := &sdk.UpdateChannelInput{ChannelARN: c.arn(name),
			S3DestinationConfiguration: &types.S3DestinationUpdateInput{DataFreshnessInSeconds: aws.Int32(f)}}
		var err error
		c.killDuring(rng, fmt.Sprintf("UpdateChannel %s to %d s", name, f), func(ctx context.Context) {
			_, err = c.cl.UpdateChannel(ctx, in)
		})
		if err != nil {
			// The update's answer was lost: the client sends it again, as
			// an SDK's retryer does (a job it stopped and the crash kept
			// stopped starts again).
			t.Logf("  UpdateChannel %s: %v; sent again", name, err)
			if _, err := c.cl.UpdateChannel(c.ctx(), in); err != nil {
				t.Fatalf("UpdateChannel %s again after the crash: %v", name, err)
			}
		}
	case "srv-kill-gw-down":
		// The delivery jobs start again while the bucket's server is
		// down: their recovery fails them, and an update repairs them.
		down := time.Duration(500+rng.IntN(2000)) * time.Millisecond
		t.Logf("runnel serve killed and started again with versitygw killed for %v", down)
		c.gw.Kill()
		c.srv.Kill()
		c.srv.Start()
		time.Sleep(down)
		c.gw.Start()
		return true
	case "update-gw-down":
		// An update while the bucket's server is paused: the delivery
		// job's savepoint waits for it.
		name := chaosChannels[rng.IntN(2)].name
		f := 1 + rng.Int32N(3)
		down := time.Duration(500+rng.IntN(2000)) * time.Millisecond
		t.Logf("UpdateChannel %s: DataFreshnessInSeconds %d with versitygw paused for %v", name, f, down)
		c.gw.Signal(syscall.SIGSTOP)
		cont := time.AfterFunc(down, func() { c.gw.Signal(syscall.SIGCONT) })
		_, err := c.cl.UpdateChannel(c.ctx(), &sdk.UpdateChannelInput{ChannelARN: c.arn(name),
			S3DestinationConfiguration: &types.S3DestinationUpdateInput{DataFreshnessInSeconds: aws.Int32(f)}})
		if cont.Stop() {
			c.gw.Signal(syscall.SIGCONT)
		}
		if err != nil {
			t.Fatalf("UpdateChannel %s with versitygw paused: %v", name, err)
		}
	case "gw-outage":
		c.outage(rng)
	}
	return false
}

// churn deletes gamma and its stream and creates both again. After a
// crash cut a churn short, either may be gone already.
func (c *chaos) churn(rng *rand.Rand, afterCrash bool) (s3Down bool) {
	t := c.t
	c.mu.Lock()
	c.gammaLive = false
	inc := c.gammaInc + 1
	c.mu.Unlock()
	t.Logf("gamma and sg deleted and created again (incarnation %d)", inc)
	if rng.IntN(2) == 0 {
		// DeleteChannel while the bucket's server is down for a while:
		// the job's last checkpoint waits for it.
		down := time.Duration(500+rng.IntN(2500)) * time.Millisecond
		t.Logf("  versitygw killed for %v meanwhile", down)
		s3Down = true
		c.gw.Kill()
		up := make(chan struct{})
		go func() {
			defer close(up)
			time.Sleep(down)
			c.gw.Start()
		}()
		defer func() { <-up }()
	}
	var nf *types.ResourceNotFoundException
	if !afterCrash && rng.IntN(2) == 0 {
		_, err := c.cl.DeleteStream(c.ctx(), &sdk.DeleteStreamInput{StreamName: aws.String("sg"), EnforceConsumerDeletion: aws.Bool(true)})
		var inUse *types.ResourceInUseException
		if !errors.As(err, &inUse) || !strings.Contains(err.Error(), "gamma") {
			t.Fatalf("DeleteStream sg while gamma reads it: %v, want ResourceInUseException naming gamma", err)
		}
	}
	if _, err := c.cl.DeleteChannel(c.ctx(), &sdk.DeleteChannelInput{ChannelARN: c.arn("gamma")}); err != nil && !(afterCrash && errors.As(err, &nf)) {
		t.Fatalf("DeleteChannel gamma: %v", err)
	}
	if _, err := c.cl.DeleteStream(c.ctx(), &sdk.DeleteStreamInput{StreamName: aws.String("sg")}); err != nil && !(afterCrash && errors.As(err, &nf)) {
		t.Fatalf("DeleteStream sg: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		_, err := c.cl.DescribeStreamSummary(c.ctx(), &sdk.DescribeStreamSummaryInput{StreamName: aws.String("sg")})
		return errors.As(err, &nf)
	}, "stream sg is not gone after DeleteStream")
	c.createStream("sg")
	c.createChannel("gamma", "sg", 1+rng.Int32N(2))
	c.mu.Lock()
	c.gammaInc, c.gammaLive = inc, true
	c.mu.Unlock()
	return s3Down
}

// outage keeps versitygw down past the sink's retry window: each channel
// must stay ACTIVE and come to say that its delivery, failed naming the S3
// sink, is retried (also after a restart of the server meanwhile, at
// times), and heal by itself once versitygw is back.
func (c *chaos) outage(rng *rand.Rand) {
	t := c.t
	t.Log("versitygw killed past the retry window")
	c.gw.Kill()
	start := time.Now()
	c.waitRetried("versitygw's outage")
	t.Logf("every channel's delivery retried after %v", time.Since(start).Round(time.Second))
	if rng.IntN(2) == 0 {
		t.Log("runnel serve killed and started again during the outage")
		c.srv.Kill()
		c.srv.Start()
		c.waitRetried("a restart of the server during the outage")
	}
	c.gw.Start()
	c.wantActive("the outage", true)
}

// waitRetried waits until every channel says that its failed delivery is
// retried; a channel that is not ACTIVE meanwhile fails the test.
func (c *chaos) waitRetried(after string) {
	t := c.t
	retried := map[string]string{}
	if !testutil.Within(75*time.Second, func() bool {
		for _, ch := range chaosChannels {
			if _, ok := retried[ch.name]; ok {
				continue
			}
			st, reason := c.status(ch.name)
			if st == types.ChannelStatusFailed {
				t.Fatalf("after %s channel %s is %s %q, want ACTIVE", after, ch.name, st, reason)
			}
			if st == types.ChannelStatusActive && strings.Contains(reason, "delivery is retried") {
				retried[ch.name] = reason
			}
		}
		return len(retried) == len(chaosChannels)
	}) {
		t.Fatalf("after %s the channels whose delivery is retried: %v; want all", after, retried)
	}
	for name, reason := range retried {
		if !strings.Contains(reason, "sink s3") && !strings.Contains(reason, "s3 sink") {
			t.Errorf("after %s channel %s is retried for a reason that does not name its S3 sink: %q", after, name, reason)
		}
	}
}

// killDuring runs ops (the API calls of the server, whose answers do not
// matter) and SIGKILLs the server at a random moment meanwhile, then
// starts it again.
func (c *chaos) killDuring(rng *rand.Rand, what string, ops func(ctx context.Context)) {
	delay := time.Duration(rng.IntN(1200)) * time.Millisecond
	c.t.Logf("runnel serve killed %v into %s, and started again", delay, what)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		time.Sleep(delay)
		c.srv.Kill()
		cancel()
	}()
	ops(ctx)
	<-killed
	c.srv.Start()
}

// wantActive checks that every channel is ACTIVE after an event, and
// comes to deliver (no reason). When the event started delivery jobs
// with versitygw down (s3Down), their starts may have failed: they
// restart by their strategy (the first attempts 1, 2, 4, … s apart) once
// versitygw is back, the channels ACTIVE meanwhile.
func (c *chaos) wantActive(after string, s3Down bool) {
	t := c.t
	t.Helper()
	wait := 20 * time.Second
	if s3Down {
		wait = 75 * time.Second
	}
	for _, ch := range chaosChannels {
		var st types.ChannelStatus
		var reason string
		if !testutil.Within(wait, func() bool {
			st, reason = c.status(ch.name)
			if st == types.ChannelStatusFailed {
				t.Fatalf("after %s channel %s is %s %q, want ACTIVE", after, ch.name, st, reason)
			}
			return st == types.ChannelStatusActive && reason == ""
		}) {
			t.Errorf("after %s channel %s is %s %q, want ACTIVE delivering", after, ch.name, st, reason)
		} else if s3Down {
			t.Logf("after %s channel %s delivers again", after, ch.name)
		}
	}
}

// settleAndCheck waits until every channel has delivered its stream,
// compares what the bucket holds with the model, deletes the channels
// (each DeleteChannel cut short by a kill of the server, then sent
// again) and checks that nothing is left staged.
func (c *chaos) settleAndCheck(rng *rand.Rand) {
	t := c.t
	stored := map[string][]chaosRec{}
	for _, ch := range chaosChannels {
		stored[ch.stream] = c.readStream(ch.stream)
	}
	c.mu.Lock()
	inc := c.gammaInc
	in := map[chaosRec]bool{}
	for _, recs := range stored {
		for _, r := range recs {
			in[r] = true
		}
	}
	var lost []string
	for r := range c.acked {
		if (r.S != "sg" || r.I == inc) && !in[r] {
			lost = append(lost, r.String())
		}
	}
	c.mu.Unlock()
	if len(lost) > 0 {
		slices.Sort(lost)
		t.Errorf("%d acknowledged records are not in their streams: %v", len(lost), lost[:min(10, len(lost))])
	}
	want := map[string][]string{}
	for _, ch := range chaosChannels {
		for _, r := range stored[ch.stream] {
			want[ch.name] = append(want[ch.name], r.String())
		}
		slices.Sort(want[ch.name])
	}
	var got map[string][]string
	var old []chaosRec
	done := testutil.Within(60*time.Second, func() bool {
		got, old = c.published(inc)
		for _, ch := range chaosChannels {
			if len(got[ch.name]) < len(want[ch.name]) {
				return false
			}
		}
		return true
	})
	for _, ch := range chaosChannels {
		if d := testutil.Diff(want[ch.name], got[ch.name]); d != "" {
			st, reason := c.status(ch.name)
			t.Errorf("channel %s (%s %q, settled: %v): published records differ from its stream's (%d stored, %d published):\n%s",
				ch.name, st, reason, done, len(want[ch.name]), len(got[ch.name]), testutil.Tail(d, 3000))
		}
	}
	// gamma's earlier incarnations: no record more often than sent.
	counts := map[chaosRec]int{}
	for _, r := range old {
		counts[r]++
	}
	c.mu.Lock()
	for r, n := range counts {
		if n > c.sent[r] {
			t.Errorf("record %s of an earlier gamma published %d times, sent %d times", r, n, c.sent[r])
		}
	}
	c.mu.Unlock()
	t.Logf("published: alpha %d, beta %d, gamma %d (and %d of its earlier incarnations)", len(got["alpha"]), len(got["beta"]), len(got["gamma"]), len(old))

	// Each DeleteChannel is cut short by a kill of the server (within the
	// tenth of a second it takes), while records come in, so that the
	// job's last checkpoint has objects to stage; the client sends it
	// again.
	stop, produced := make(chan struct{}), make(chan struct{})
	go func() { defer close(produced); c.produce(stop) }()
	defer func() { close(stop); <-produced }()
	time.Sleep(1500 * time.Millisecond)
	var nf *types.ResourceNotFoundException
	for _, ch := range chaosChannels {
		go c.cl.DeleteChannel(context.Background(), &sdk.DeleteChannelInput{ChannelARN: c.arn(ch.name)})
		k := time.Duration(rng.IntN(100)) * time.Millisecond
		time.Sleep(k)
		t.Logf("runnel serve killed %v into DeleteChannel %s, and started again", k, ch.name)
		c.srv.Kill()
		c.srv.Start()
		if _, err := c.cl.DeleteChannel(c.ctx(), &sdk.DeleteChannelInput{ChannelARN: c.arn(ch.name)}); err != nil && !errors.As(err, &nf) {
			t.Fatalf("DeleteChannel %s: %v", ch.name, err)
		}
	}
	if staged := c.gw.Objects(t, "lake", s3sink.DefaultStagingPrefix); len(staged) > 0 {
		t.Errorf("%d staged objects left once every channel is deleted: %v", len(staged), staged[:min(5, len(staged))])
	}
}

// published reads every published object of the bucket and returns the
// records of each channel's current incarnation, sorted, and those of
// gamma's earlier incarnations.
func (c *chaos) published(inc int) (map[string][]string, []chaosRec) {
	t := c.t
	got := map[string][]string{}
	var old []chaosRec
	for _, k := range c.gw.Objects(t, "lake", "") {
		if strings.HasPrefix(k, s3sink.DefaultStagingPrefix) {
			continue
		}
		name := ""
		for _, ch := range chaosChannels {
			if strings.HasPrefix(path.Base(k), channelJob(ch.name)+"-") {
				name = ch.name
			}
		}
		if name == "" {
			t.Fatalf("object %s is no channel's", k)
		}
		rows, err := s3sink.ReadObject(k, c.gw.Get(t, "lake", k))
		if err != nil {
			t.Fatalf("object %s: %v", k, err)
		}
		for _, row := range rows {
			r := chaosRec{S: fmt.Sprint(row["s"]), I: int(row["i"].(float64)), N: int(row["n"].(float64))}
			if name == "gamma" && r.I != inc {
				old = append(old, r)
				continue
			}
			got[name] = append(got[name], r.String())
		}
	}
	for _, v := range got {
		slices.Sort(v)
	}
	return got, old
}

func (c *chaos) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	c.t.Cleanup(cancel)
	return ctx
}

func (c *chaos) arn(name string) *string {
	return aws.String("arn:aws:kinesis:us-east-1:000000000000:channel/" + name)
}

func (c *chaos) streamARN(name string) string {
	return "arn:aws:kinesis:us-east-1:000000000000:stream/" + name
}

// status is DescribeChannel's status and reason.
func (c *chaos) status(name string) (types.ChannelStatus, string) {
	c.t.Helper()
	d, err := c.rcl.DescribeChannel(c.ctx(), &sdk.DescribeChannelInput{ChannelARN: c.arn(name)})
	if err != nil {
		c.t.Fatalf("DescribeChannel %s: %v", name, err)
	}
	return d.ChannelDescription.ChannelStatus, aws.ToString(d.ChannelDescription.ChannelStatusReason)
}

// createStream creates a stream of 2 shards and waits until it is ACTIVE.
func (c *chaos) createStream(name string) {
	c.t.Helper()
	if _, err := c.cl.CreateStream(c.ctx(), &sdk.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(2)}); err != nil {
		c.t.Fatalf("CreateStream %s: %v", name, err)
	}
	testutil.Eventually(c.t, 10*time.Second, func() bool {
		d, err := c.cl.DescribeStreamSummary(c.ctx(), &sdk.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		return err == nil && d.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
	}, "stream %s is not ACTIVE", name)
}

// createChannel creates channel name from stream to the bucket "lake",
// gzip'd JSON lines every fresh seconds.
func (c *chaos) createChannel(name, stream string, fresh int32) {
	c.t.Helper()
	if _, err := c.cl.CreateChannel(c.ctx(), c.channelInput(name, stream, fresh)); err != nil {
		c.t.Fatalf("CreateChannel %s: %v", name, err)
	}
}

// channelInput is CreateChannel's input for channel name from stream to
// the bucket "lake", gzip'd JSON lines every fresh seconds.
func (c *chaos) channelInput(name, stream string, fresh int32) *sdk.CreateChannelInput {
	return &sdk.CreateChannelInput{
		ChannelName:             aws.String(name),
		ServiceExecutionRoleARN: aws.String("arn:aws:iam::000000000000:role/delivery"),
		StreamConfigurationList: []types.ChannelStreamConfiguration{{StreamARN: aws.String(c.streamARN(stream)),
			RecordConfiguration: &types.RecordConfiguration{RecordFormatType: types.RecordFormatTypeJson}}},
		S3DestinationConfiguration: &types.S3DestinationConfiguration{DataFreshnessInSeconds: aws.Int32(fresh),
			StorageConfiguration: &types.S3StorageConfiguration{BucketARN: aws.String("arn:aws:s3:::lake"),
				CompressionType: types.S3CompressionTypeGzip, ExpectedBucketOwner: aws.String("000000000000")}},
	}
}

// produce puts 5 records into each stream every 50 ms until stop is
// closed, sending a record again until a PutRecords acknowledges it
// (the server may be down meanwhile).
func (c *chaos) produce(stop <-chan struct{}) {
	next := map[string]int{}
	var pending []chaosRec
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		c.mu.Lock()
		for _, ch := range chaosChannels {
			inc := 0
			if ch.stream == "sg" {
				if !c.gammaLive {
					continue
				}
				inc = c.gammaInc
			}
			for range 5 {
				pending = append(pending, chaosRec{S: ch.stream, I: inc, N: next[ch.stream]})
				next[ch.stream]++
			}
		}
		// sg's records of an earlier incarnation are not sent again.
		pending = slices.DeleteFunc(pending, func(r chaosRec) bool { return r.S == "sg" && (r.I != c.gammaInc || !c.gammaLive) })
		c.mu.Unlock()
		var left []chaosRec
		for _, s := range []string{"sa", "sb", "sg"} {
			var batch []chaosRec
			for _, r := range pending {
				if r.S == s {
					batch = append(batch, r)
				}
			}
			if len(batch) > 0 {
				left = append(left, c.put(s, batch[:min(len(batch), 500)])...)
				left = append(left, batch[min(len(batch), 500):]...)
			}
		}
		pending = left
	}
}

// put sends batch to stream and returns the records not acknowledged.
func (c *chaos) put(stream string, batch []chaosRec) []chaosRec {
	entries := make([]types.PutRecordsRequestEntry, len(batch))
	for i, r := range batch {
		entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint(r.N)),
			Data: fmt.Appendf(nil, `{"s":%q,"i":%d,"n":%d}`, r.S, r.I, r.N)}
	}
	c.mu.Lock()
	for _, r := range batch {
		c.sent[r]++
	}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := c.cl.PutRecords(ctx, &sdk.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil {
		return batch
	}
	var left []chaosRec
	c.mu.Lock()
	defer c.mu.Unlock()
	c.puts++
	for i, e := range out.Records {
		if e.ErrorCode != nil {
			left = append(left, batch[i])
			continue
		}
		c.acked[batch[i]] = true
	}
	return left
}

// readStream reads every record of stream with GetRecords.
func (c *chaos) readStream(stream string) []chaosRec {
	t := c.t
	shards, err := c.rcl.ListShards(c.ctx(), &sdk.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("ListShards %s: %v", stream, err)
	}
	var out []chaosRec
	for _, sh := range shards.Shards {
		it, err := c.rcl.GetShardIterator(c.ctx(), &sdk.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: sh.ShardId,
			ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatalf("GetShardIterator %s %s: %v", stream, aws.ToString(sh.ShardId), err)
		}
		iter := it.ShardIterator
		for iter != nil {
			g, err := c.rcl.GetRecords(c.ctx(), &sdk.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatalf("GetRecords %s %s: %v", stream, aws.ToString(sh.ShardId), err)
			}
			for _, r := range g.Records {
				var cr chaosRec
				if _, err := fmt.Sscanf(string(r.Data), `{"s":%q,"i":%d,"n":%d}`, &cr.S, &cr.I, &cr.N); err != nil {
					t.Fatalf("record %q of %s: %v", r.Data, stream, err)
				}
				out = append(out, cr)
			}
			iter = g.NextShardIterator
			if len(g.Records) == 0 && aws.ToInt64(g.MillisBehindLatest) == 0 {
				break
			}
		}
	}
	return out
}
