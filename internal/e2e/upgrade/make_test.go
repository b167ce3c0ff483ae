package upgrade

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

var (
	oldBin    = flag.String("old-bin", "", "make a fixture with this earlier runnel binary (see testdata/README.md)")
	oldCommit = flag.String("commit", "", "the commit -old-bin was built from")
	failpoint = flag.String("failpoint", "before-commit", "after the kill, start the earlier binary again with this checkpoint failpoint armed (\"\": not)")
	fixture   = flag.String("fixture", "", "the fixture's name: it is written to testdata/NAME.tar.gz and testdata/NAME.json.gz")
)

// Expect is what an earlier binary acknowledged before it was killed: the
// state the current binary must show on its data directory.
type Expect struct {
	Commit  string   `json:"commit"`
	Streams []string `json:"streams"` // ListStreams
	Gone    []string `json:"gone"`    // deleted streams
	// Summaries are DescribeStreamSummary's StreamDescriptionSummary,
	// Shards ListShards' shards, Tags ListTagsForStream's tags and
	// Consumers ListStreamConsumers' consumers, by stream.
	Summaries map[string]map[string]any `json:"summaries"`
	Shards    map[string][]any          `json:"shards"`
	Tags      map[string][]any          `json:"tags"`
	Consumers map[string][]any          `json:"consumers"`
	// Policies are GetResourcePolicy's policies by stream, Account
	// DescribeAccountSettings' answer.
	Policies map[string]any `json:"policies"`
	Account  map[string]any `json:"account"`
	// Group is the consumer group app's leases of the stream resharded.
	Group map[string]GroupLease `json:"group"`
	// Channel is DescribeChannel's description of the channel
	// plain-to-lake.
	Channel map[string]any `json:"channel"`
	// Iterator is a shard iterator of plain's shard 0 at its third record.
	Iterator string `json:"iterator"`
	// Records are every stream's records by shard. A stream in Growing
	// (a running job's output) may have more after them.
	Records map[string]map[string][]Rec `json:"records"`
	Growing []string                    `json:"growing"`
	// Resharding are streams whose UpdateShardCount was under way at the
	// kill: their shards and summary may be either side of it.
	Resharding []string `json:"resharding"`
	// AdminToken and ReaderToken were made with `runnel tokens create`;
	// the reader's is limited to streams plain*.
	AdminToken  string `json:"admin_token"`
	ReaderToken string `json:"reader_token"`
	// Clicks is how many clicks the counts job's input holds (clicks
	// [0, Clicks)); CountsSavepoint a savepoint of it taken while it ran.
	Clicks          int    `json:"clicks"`
	CountsSavepoint string `json:"counts_savepoint"`
	// IdleClicks is how many clicks the idle job read before it was
	// stopped at IdleSavepoint.
	IdleClicks    int    `json:"idle_clicks"`
	IdleSavepoint string `json:"idle_savepoint"`
}

func encodeB64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func decodeB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("record data %q: %v", s, err)
	}
	return b
}

// TestMakeFixture makes a fixture with an earlier binary:
//
//	go test ./internal/e2e/upgrade -run TestMakeFixture -old-bin /tmp/runnel-C -commit C -fixture NAME
//
// It fills a fresh data directory through the binary's APIs, kills the
// server with SIGKILL while its job runs, and writes the directory and
// what was acknowledged into testdata.
func TestMakeFixture(t *testing.T) {
	if *oldBin == "" {
		t.Skip("makes a fixture only when given -old-bin, -commit and -fixture")
	}
	if *fixture == "" || *oldCommit == "" {
		t.Fatal("-fixture and -commit are needed with -old-bin")
	}
	data := t.TempDir()
	e := &Expect{Commit: *oldCommit, Gone: []string{"gone"}, Growing: []string{"counts-out"}, Resharding: []string{"updating"}}
	e.AdminToken = oldToken(t, data, "admin1", "--role", "admin")
	e.ReaderToken = oldToken(t, data, "reader1", "--role", "reader", "--streams", "plain*")

	addr := testbin.FreeAddr(t)
	gw := testsrv.StartS3(t, channelBucket)
	flags, env := channelFlags(gw)
	cmd := exec.Command(*oldBin, append([]string{"serve", "--data", data, "--addr", addr, "--log-level", "warn"}, flags...)...)
	cmd.Env = append(os.Environ(), env...)
	var logs testutil.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("old server's output:\n%s", testutil.Tail(logs.String(), 6000))
		}
	})
	a := newAPI(t, "http://"+addr, e.AdminToken)
	if !testutil.Within(60*time.Second, func() bool {
		resp, err := http.Get(a.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}) {
		t.Fatal("the old server did not start")
	}

	makeStreams(t, a)
	makeJobs(t, a, e)
	e.Group = makeGroup(t, a)
	e.Channel = makeChannel(t, a)

	e.Streams = a.streamNames()
	e.Summaries, e.Shards, e.Tags, e.Consumers = map[string]map[string]any{}, map[string][]any{}, map[string][]any{}, map[string][]any{}
	e.Records = map[string]map[string][]Rec{}
	e.Policies = map[string]any{}
	for _, s := range e.Streams {
		e.Summaries[s] = a.kinesis("DescribeStreamSummary", map[string]any{"StreamName": s})["StreamDescriptionSummary"].(map[string]any)
		e.Shards[s] = a.shards(s)
		e.Tags[s], _ = a.kinesis("ListTagsForStream", map[string]any{"StreamName": s})["Tags"].([]any)
		arn := e.Summaries[s]["StreamARN"]
		e.Consumers[s], _ = a.kinesis("ListStreamConsumers", map[string]any{"StreamARN": arn})["Consumers"].([]any)
		e.Records[s] = a.records(s)
		e.Policies[s] = policyOf(a, arn)
	}
	e.Account = a.kinesis("DescribeAccountSettings", map[string]any{})
	e.Iterator = a.kinesis("GetShardIterator", map[string]any{"StreamName": "plain", "ShardId": "shardId-000000000000",
		"ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": e.Records["plain"]["shardId-000000000000"][2].Seq})["ShardIterator"].(string)
	// 100 more clicks, and the kill before the counts job's next
	// checkpoint can take them in (its checkpoints are a second apart):
	// the restart below replays them, so its checkpoint stages output.
	// The stream updating is being resharded at the kill.
	e.Clicks = 300
	a.putClicks("clicks", 200, e.Clicks)
	e.Records["clicks"] = a.records("clicks")
	a.kinesis("UpdateShardCount", map[string]any{"StreamName": "updating", "TargetShardCount": 4, "ScalingType": "UNIFORM_SCALING"})
	cmd.Process.Kill()
	cmd.Wait()
	if *failpoint != "" {
		crashAt(t, data, addr, flags, env)
	}
	writeFixture(t, data, e)
}

// crashAt starts the earlier binary again on data with the failpoint
// armed, so that the counts job, resuming from the checkpoint before the
// kill, dies in its first checkpoint (before-commit: with its sinks'
// output staged and not committed).
func crashAt(t *testing.T, data, addr string, flags, env []string) {
	cmd := exec.Command(*oldBin, append([]string{"serve", "--data", data, "--addr", addr, "--log-level", "info"}, flags...)...)
	cmd.Env = append(append(os.Environ(), env...), "RUNNEL_FAILPOINTS="+*failpoint+"=1")
	var logs testutil.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("the earlier binary did not reach failpoint %s:\n%s", *failpoint, testutil.Tail(logs.String(), 4000))
	}
	if !strings.Contains(logs.String(), "failpoint "+*failpoint) {
		t.Fatalf("the earlier binary ended without reaching failpoint %s:\n%s", *failpoint, testutil.Tail(logs.String(), 4000))
	}
}

// policyOf is a stream's resource policy (GetResourcePolicy).
func policyOf(a *api, arn any) any {
	return a.kinesis("GetResourcePolicy", map[string]any{"ResourceARN": arn})["Policy"]
}

// oldToken makes a token with the earlier binary on the data directory.
func oldToken(t *testing.T, data, name string, flags ...string) string {
	out, err := exec.Command(*oldBin, append([]string{"tokens", "create", name, "--data", data}, flags...)...).Output()
	if err != nil {
		t.Fatalf("tokens create %s: %v", name, err)
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

// waitActive waits until the stream is ACTIVE.
func waitActive(t *testing.T, a *api, stream string) {
	t.Helper()
	if !testutil.Within(60*time.Second, func() bool {
		out := a.kinesis("DescribeStreamSummary", map[string]any{"StreamName": stream})
		return out["StreamDescriptionSummary"].(map[string]any)["StreamStatus"] == "ACTIVE"
	}) {
		t.Fatalf("stream %s did not become ACTIVE", stream)
	}
}

// putData is the data of record i that putN puts to stream.
func putData(stream string, i int) string { return fmt.Sprintf(`{"stream":%q,"i":%d}`, stream, i) }

// putN puts n records with keys k0.. to stream.
func putN(t *testing.T, a *api, stream string, from, n int) {
	t.Helper()
	var entries []map[string]any
	for i := from; i < from+n; i++ {
		entries = append(entries, map[string]any{"PartitionKey": fmt.Sprintf("k%d", i), "Data": encodeB64(putData(stream, i))})
	}
	for _, r := range a.kinesis("PutRecords", map[string]any{"StreamName": stream, "Records": entries})["Records"].([]any) {
		if r.(map[string]any)["SequenceNumber"] == nil {
			t.Fatalf("put to %s: %v", stream, r)
		}
	}
}

// makeStreams makes streams of several shards, a resharded one (a split,
// then a merge), one with tags and retention changed, a deleted one, and
// consumers.
func makeStreams(t *testing.T, a *api) {
	create := func(name string, shards int) {
		a.kinesis("CreateStream", map[string]any{"StreamName": name, "ShardCount": shards})
		waitActive(t, a, name)
	}
	create("plain", 3)
	putN(t, a, "plain", 0, 60)

	create("resharded", 2)
	putN(t, a, "resharded", 0, 40)
	s0 := a.shards("resharded")[0].(map[string]any)["HashKeyRange"].(map[string]any)
	a.kinesis("SplitShard", map[string]any{"StreamName": "resharded", "ShardToSplit": "shardId-000000000000",
		"NewStartingHashKey": midpoint(t, s0["StartingHashKey"].(string), s0["EndingHashKey"].(string))})
	waitActive(t, a, "resharded")
	putN(t, a, "resharded", 40, 40)
	a.kinesis("MergeShards", map[string]any{"StreamName": "resharded",
		"ShardToMerge": "shardId-000000000003", "AdjacentShardToMerge": "shardId-000000000001"})
	waitActive(t, a, "resharded")
	putN(t, a, "resharded", 80, 40)

	create("tagged", 1)
	a.kinesis("AddTagsToStream", map[string]any{"StreamName": "tagged", "Tags": map[string]string{"team": "a", "env": "test"}})
	a.kinesis("RemoveTagsFromStream", map[string]any{"StreamName": "tagged", "TagKeys": []string{"env"}})
	a.kinesis("IncreaseStreamRetentionPeriod", map[string]any{"StreamName": "tagged", "RetentionPeriodHours": 48})
	putN(t, a, "tagged", 0, 10)

	create("settings", 2)
	arn := a.kinesis("DescribeStreamSummary", map[string]any{"StreamName": "settings"})["StreamDescriptionSummary"].(map[string]any)["StreamARN"]
	for _, op := range []struct {
		name string
		in   map[string]any
	}{
		{"UpdateStreamMode", map[string]any{"StreamARN": arn, "StreamModeDetails": map[string]any{"StreamMode": "ON_DEMAND"}}},
		{"StartStreamEncryption", map[string]any{"StreamName": "settings", "EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}},
		{"EnableEnhancedMonitoring", map[string]any{"StreamName": "settings", "ShardLevelMetrics": []string{"IncomingBytes", "OutgoingRecords"}}},
		{"UpdateMaxRecordSize", map[string]any{"StreamARN": arn, "MaxRecordSizeInKiB": 2048}},
		{"UpdateStreamWarmThroughput", map[string]any{"StreamARN": arn, "WarmThroughputMiBps": 10}},
		{"PutResourcePolicy", map[string]any{"ResourceARN": arn, "Policy": settingsPolicy(arn.(string))}},
	} {
		a.kinesis(op.name, op.in)
		waitActive(t, a, "settings")
	}
	putN(t, a, "settings", 0, 10)
	a.kinesis("UpdateAccountSettings", map[string]any{"MinimumThroughputBillingCommitment": map[string]any{"Status": "ENABLED"}})

	create("updating", 2)
	putN(t, a, "updating", 0, 20)

	create("gone", 1)
	putN(t, a, "gone", 0, 5)
	a.kinesis("DeleteStream", map[string]any{"StreamName": "gone"})
	if !testutil.Within(60*time.Second, func() bool {
		st, _ := a.kinesisTry("DescribeStreamSummary", map[string]any{"StreamName": "gone"})
		return st == 400
	}) {
		t.Fatal("stream gone was not deleted")
	}

	for stream, consumer := range map[string]string{"plain": "dash", "resharded": "kcl"} {
		arn := a.kinesis("DescribeStreamSummary", map[string]any{"StreamName": stream})["StreamDescriptionSummary"].(map[string]any)["StreamARN"]
		c := a.kinesis("RegisterStreamConsumer", map[string]any{"StreamARN": arn, "ConsumerName": consumer})["Consumer"].(map[string]any)
		if !testutil.Within(60*time.Second, func() bool {
			d := a.kinesis("DescribeStreamConsumer", map[string]any{"ConsumerARN": c["ConsumerARN"]})
			return d["ConsumerDescription"].(map[string]any)["ConsumerStatus"] == "ACTIVE"
		}) {
			t.Fatalf("consumer %s did not become ACTIVE", consumer)
		}
	}
}

// settingsPolicy is a resource policy of the stream arn.
func settingsPolicy(arn string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kinesis:GetRecords","Resource":%q}]}`, arn)
}

// midpoint is (lo+hi)/2 of two decimal hash keys.
func midpoint(t *testing.T, lo, hi string) string {
	l, ok1 := new(big.Int).SetString(lo, 10)
	h, ok2 := new(big.Int).SetString(hi, 10)
	if !ok1 || !ok2 {
		t.Fatalf("hash keys %q %q", lo, hi)
	}
	return l.Add(l, h).Rsh(l, 1).String()
}

// makeJobs runs the idle job (stopped at a savepoint after IdleClicks) and
// the counts job (200 clicks, and a savepoint while it runs).
func makeJobs(t *testing.T, a *api, e *Expect) {
	a.submit(countsJob("idle", "idle-in", "idle-out"), "")
	waitActive(t, a, "idle-in")
	e.IdleClicks = 100
	a.putClicks("idle-in", 0, e.IdleClicks)
	waitRows(t, a, "idle-out")
	var stop struct {
		Savepoint struct {
			Name string `json:"name"`
		} `json:"savepoint"`
	}
	json.Unmarshal(a.rest("DELETE", "/api/v1/jobs/idle?savepoint=true", "", "", 200), &stop)
	if e.IdleSavepoint = stop.Savepoint.Name; e.IdleSavepoint == "" {
		t.Fatal("the idle job's stop gave no savepoint")
	}

	a.submit(countsJob("counts", "clicks", "counts-out"), "")
	waitActive(t, a, "clicks")
	a.putClicks("clicks", 0, 200)
	waitRows(t, a, "counts-out")
	var sp struct {
		Name string `json:"name"`
	}
	json.Unmarshal(a.rest("POST", "/api/v1/jobs/counts/savepoints", "", "", 201), &sp)
	if e.CountsSavepoint = sp.Name; sp.Name == "" {
		t.Fatal("no savepoint of the counts job")
	}
	e.Clicks = 200
}

// waitRows waits until a stream sink has written a window result.
func waitRows(t *testing.T, a *api, stream string) {
	t.Helper()
	if !testutil.Within(120*time.Second, func() bool {
		st, _ := a.kinesisTry("DescribeStreamSummary", map[string]any{"StreamName": stream})
		return st == 200 && len(a.rows(stream)) > 0
	}) {
		t.Fatalf("no window results in %s", stream)
	}
}

// writeFixture writes the data directory as testdata/NAME.tar.gz and e as
// testdata/NAME.json.gz.
func writeFixture(t *testing.T, data string, e *Expect) {
	f, err := os.Create(filepath.Join("testdata", *fixture+".tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	err = filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == data {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(data, p)
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		hdr.ModTime, hdr.Uname, hdr.Gname, hdr.Uid, hdr.Gid = time.Unix(0, 0), "", "", 0, 0
		if err := tw.WriteHeader(hdr); err != nil || !d.Type().IsRegular() {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(e, "", "  ")
	var z bytes.Buffer
	zw, _ = gzip.NewWriterLevel(&z, gzip.BestCompression)
	zw.Write(append(b, '\n'))
	zw.Close()
	if err := os.WriteFile(filepath.Join("testdata", *fixture+".json.gz"), z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
