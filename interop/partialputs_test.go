package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/client/producer"
)

// partialFaults fail PutRecords entries one by one, as AWS does when some
// records of a request are throttled: about 37% of the entries of every
// call, each either ProvisionedThroughputExceededException or
// InternalFailure, and those entries are not stored.
const partialFaults = "PutRecords:record-throttle:0.3,PutRecords:record-internal:0.1"

// perRecordMessage is what AWS says for a failed entry of each code.
var perRecordMessage = map[string]*regexp.Regexp{
	"ProvisionedThroughputExceededException": regexp.MustCompile(`^Rate exceeded for shard shardId-\d{12} in stream \S+ under account \d{12}\.$`),
	"InternalFailure":                        regexp.MustCompile(`^Internal Service Failure$`),
}

// TestRealClientsPartialPuts runs each real client's retry pattern for
// PutRecords against runnel serve --inject failing single entries, and
// reads every stream back: each record is there exactly once. boto3, the
// JavaScript SDK v3 and the Go SDK v2 resend the entries whose result has
// an ErrorCode until FailedRecordCount is 0 (the loop AWS's documentation
// gives); Runnel's producer retries them by itself; the AWS CLI reports
// FailedRecordCount and the failed entries, and the test resends those
// with it.
func TestRealClientsPartialPuts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the AWS CLI, boto3 and the JS SDK against runnel serve")
	}
	for _, p := range []string{"/usr/bin/aws", "/usr/bin/python3"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: install Debian's awscli and python3-boto3 (see .ci/run)", p)
		}
	}
	root, _ := filepath.Abs("..")
	js := filepath.Join(root, "interop", "js")
	if _, err := os.Stat(filepath.Join(js, "node_modules", "@aws-sdk", "client-kinesis")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = js
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in interop/js: %v\n%s", err, out)
		}
	}
	const n = 400
	base := startServe(t, t.TempDir(), "http", http.DefaultClient, "--inject", partialFaults,
		"--streams", "boto3:2,js:2,gosdk:2,producer:2,awscli:2")
	kc := sdk.New(sdk.Options{Region: "us-east-1", BaseEndpoint: aws.String(base),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "k", SecretAccessKey: "s"}, nil
		})})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	clients := map[string]func() (string, error){
		"boto3": func() (string, error) {
			return run(exec.Command(filepath.Join(root, "interop", "boto3", "partialputs.py"), base, "boto3", fmt.Sprint(n)))
		},
		"js": func() (string, error) {
			return run(exec.Command("node", "--no-warnings", filepath.Join(js, "partialputs.mjs"), base, "js", fmt.Sprint(n)))
		},
		"gosdk":    func() (string, error) { return goSDKPuts(ctx, kc, "gosdk", n) },
		"producer": func() (string, error) { return producerPuts(ctx, base, "producer", n) },
		"awscli":   func() (string, error) { return cliPuts(base, "awscli", n) },
	}
	var wg sync.WaitGroup
	for name, put := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := put()
			if err != nil {
				t.Errorf("%s: %v\n%s", name, err, out)
				return
			}
			t.Logf("%s", strings.TrimSpace(out))
			if got, want := readStream(ctx, t, kc, name), expected(name, n); !slices.Equal(got, want) {
				t.Errorf("stream %s holds %d records, want %s-0 .. %s-%d once each: %s", name, len(got), name, name, n-1, countDiff(got, want))
			}
		}()
	}
	wg.Wait()
}

func run(cmd *exec.Cmd) (string, error) {
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// expected is the sorted data of records NAME-0 .. NAME-{n-1}.
func expected(name string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", name, i)
	}
	slices.Sort(out)
	return out
}

// countDiff names the records got holds more or fewer times than want.
func countDiff(got, want []string) string {
	count := map[string]int{}
	for _, g := range got {
		count[g]++
	}
	for _, w := range want {
		count[w]--
	}
	var extra, missing []string
	for d, c := range count {
		switch {
		case c > 0:
			extra = append(extra, fmt.Sprintf("%s (+%d)", d, c))
		case c < 0:
			missing = append(missing, d)
		}
	}
	slices.Sort(extra)
	slices.Sort(missing)
	return lastBytes(fmt.Sprintf("stored more than once or not sent: %v; missing: %v", extra, missing), 1000)
}

// readStream reads every shard of stream from its start to its end and
// returns the records' data, sorted.
func readStream(ctx context.Context, t *testing.T, kc *sdk.Client, stream string) []string {
	shards, err := kc.ListShards(ctx, &sdk.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Errorf("ListShards %s: %v", stream, err)
		return nil
	}
	var got []string
	for _, s := range shards.Shards {
		it, err := kc.GetShardIterator(ctx, &sdk.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Errorf("GetShardIterator %s %s: %v", stream, *s.ShardId, err)
			return nil
		}
		iter := it.ShardIterator
		for iter != nil {
			rr, err := kc.GetRecords(ctx, &sdk.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Errorf("GetRecords %s %s: %v", stream, *s.ShardId, err)
				return nil
			}
			for _, r := range rr.Records {
				got = append(got, string(r.Data))
			}
			if len(rr.Records) == 0 && aws.ToInt64(rr.MillisBehindLatest) == 0 {
				break
			}
			iter = rr.NextShardIterator
		}
	}
	slices.Sort(got)
	return got
}

// checkEntries checks a PutRecords answer entry by entry and returns the
// indexes of the failed entries.
func checkEntries(failedCount int, res []types.PutRecordsResultEntry) ([]int, error) {
	var failed []int
	for i, r := range res {
		if r.ErrorCode == nil {
			if r.SequenceNumber == nil || r.ShardId == nil {
				return nil, fmt.Errorf("entry %d: neither stored nor failed: %+v", i, r)
			}
			continue
		}
		if re := perRecordMessage[*r.ErrorCode]; re == nil || !re.MatchString(aws.ToString(r.ErrorMessage)) || r.SequenceNumber != nil {
			return nil, fmt.Errorf("entry %d: code %s message %q sequence number %v", i, *r.ErrorCode, aws.ToString(r.ErrorMessage), r.SequenceNumber)
		}
		failed = append(failed, i)
	}
	if failedCount != len(failed) {
		return nil, fmt.Errorf("FailedRecordCount %d, %d entries with an ErrorCode", failedCount, len(failed))
	}
	return failed, nil
}

// goSDKPuts is the Go SDK v2's retry loop over FailedRecordCount.
func goSDKPuts(ctx context.Context, kc *sdk.Client, stream string, n int) (string, error) {
	calls, resent := 0, 0
	for start := 0; start < n; start += 100 {
		var pending []types.PutRecordsRequestEntry
		for i := start; i < min(start+100, n); i++ {
			pending = append(pending, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("k%d", i%16)), Data: []byte(fmt.Sprintf("%s-%d", stream, i))})
		}
		for attempt := 1; len(pending) > 0; attempt++ {
			if attempt > 60 {
				return "", fmt.Errorf("%d records still failing after 60 calls", len(pending))
			}
			out, err := kc.PutRecords(ctx, &sdk.PutRecordsInput{StreamName: aws.String(stream), Records: pending})
			if err != nil {
				return "", err
			}
			calls++
			failed, err := checkEntries(int(aws.ToInt32(out.FailedRecordCount)), out.Records)
			if err != nil {
				return "", err
			}
			var again []types.PutRecordsRequestEntry
			for _, i := range failed {
				again = append(again, pending[i])
			}
			resent += len(again)
			pending = again
			if len(pending) > 0 {
				time.Sleep(min(10*time.Millisecond<<attempt, 200*time.Millisecond))
			}
		}
	}
	if resent == 0 {
		return "", fmt.Errorf("no entry failed: the injection is off")
	}
	return fmt.Sprintf("Go SDK partial puts: %d records in %d calls, %d entries resent", n, calls, resent), nil
}

// producerPuts sends through client/producer, which resends failed
// entries by itself.
func producerPuts(ctx context.Context, base, stream string, n int) (string, error) {
	var bad atomic.Value
	var results atomic.Int64
	p, err := producer.New(ctx, producer.Runnel(base, stream, ""), producer.Options{
		BackoffBase: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Linger: 10 * time.Millisecond,
		OnResult: func(r producer.Result) {
			results.Add(1)
			if r.Err != nil {
				bad.Store(fmt.Errorf("record %s: %w", r.Data, r.Err))
			}
		},
	})
	if err != nil {
		return "", err
	}
	for i := 0; i < n; i++ {
		if err := p.Put(ctx, fmt.Sprintf("k%d", i%16), []byte(fmt.Sprintf("%s-%d", stream, i))); err != nil {
			return "", err
		}
	}
	if err := p.Close(ctx); err != nil {
		return "", err
	}
	if err, _ := bad.Load().(error); err != nil {
		return "", err
	}
	m := p.Metrics().Snapshot()
	if results.Load() != int64(n) || m.Retries == 0 {
		return "", fmt.Errorf("%d results for %d records, %v retries", results.Load(), n, m.Retries)
	}
	return fmt.Sprintf("producer partial puts: %d records in %v requests, %v retries", n, m.Requests, m.Retries), nil
}

// cliPuts sends with `aws kinesis put-records` and resends the entries
// its output lists as failed.
func cliPuts(base, stream string, n int) (string, error) {
	var pending []string
	for i := 0; i < n; i++ {
		pending = append(pending, fmt.Sprintf("PartitionKey=k%d,Data=%s-%d", i%16, stream, i))
	}
	calls, resent := 0, 0
	for start := 0; start < n; start += 100 {
		batch := pending[start:min(start+100, n)]
		for attempt := 1; len(batch) > 0; attempt++ {
			if attempt > 60 {
				return "", fmt.Errorf("%d records still failing after 60 calls", len(batch))
			}
			cmd := exec.Command("/usr/bin/aws", append([]string{"kinesis", "put-records", "--endpoint-url", base, "--output", "json",
				"--cli-binary-format", "raw-in-base64-out", "--stream-name", stream, "--records"}, batch...)...)
			cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=k", "AWS_SECRET_ACCESS_KEY=s", "AWS_DEFAULT_REGION=us-east-1", "AWS_PAGER=")
			out, err := cmd.Output()
			if err != nil {
				return string(out), fmt.Errorf("aws kinesis put-records: %v", err)
			}
			calls++
			var res struct {
				FailedRecordCount int
				Records           []types.PutRecordsResultEntry
			}
			if err := json.Unmarshal(out, &res); err != nil {
				return string(out), err
			}
			if len(res.Records) != len(batch) {
				return string(out), fmt.Errorf("%d results for %d entries", len(res.Records), len(batch))
			}
			failed, err := checkEntries(res.FailedRecordCount, res.Records)
			if err != nil {
				return string(out), err
			}
			var again []string
			for _, i := range failed {
				again = append(again, batch[i])
			}
			resent += len(again)
			batch = again
		}
	}
	if resent == 0 {
		return "", fmt.Errorf("no entry failed: the injection is off")
	}
	return fmt.Sprintf("awscli partial puts: %d records in %d calls, %d entries resent", n, calls, resent), nil
}
