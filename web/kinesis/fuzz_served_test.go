package kinesis

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/streams"
)

// The served fuzzers run the handler as runnel serve builds it: a store
// with the server's update visibility, the account settings file, a real
// job manager with channels enabled (their S3 endpoint refuses
// connections, so delivery jobs fail: the API must answer all the same),
// and, chosen by the input, per-shard limits, a fault injected on one
// operation and an authenticated caller (what package web's SigV4 layer
// puts in the context: an admin, a role that is refused, a caller that
// sees one stream only). Only the SubscribeToShard windows are shortened,
// so that a subscription ends within the input.

// servedEpoch is the fixture's clock at its start; the clock stands still
// unless a step moves it, so that what a fixture answers depends on its
// input only.
var servedEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// served is one fixture: the handler and the live values requests refer
// to by placeholder ($F is the 4-shard stream's ARN, $G the resharded
// stream's, $C the consumer's, $H the channel's, $I and $J shard
// iterators on f and on g's closed shard, $S a sequence number of f's
// first shard, $P the policy's principal).
type served struct {
	tb     testing.TB
	dir    string
	limits bool
	uses   int
	h      *Handler
	store  *streams.Store
	mgr    *jobs.Manager
	clock  *fakeClock
	caller *Caller
	subst  map[string]string
	// errs counts the internal failures the handler logged.
	errs *errorCount
}

type errorCount struct {
	mu   sync.Mutex
	msgs []string
}

func (c *errorCount) Enabled(context.Context, slog.Level) bool { return true }
func (c *errorCount) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError && strings.Contains(r.Message, "kinesis api") {
		c.mu.Lock()
		c.msgs = append(c.msgs, r.Message)
		c.mu.Unlock()
	}
	return nil
}
func (c *errorCount) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *errorCount) WithGroup(string) slog.Handler      { return c }

// servedSetup are the fixture's knobs, taken from a fuzz input's byte.
type servedSetup struct {
	limits bool   // --shard-limits (at a hundredth of AWS's limits)
	fault  *Fault // --inject on one operation, every call
	who    int    // 0 no caller (auth off), 1 admin, 2 refused role, 3 sees stream f only
}

func setupOf(b uint8) servedSetup {
	s := servedSetup{limits: b&1 != 0, who: int(b>>1) & 3}
	if b&0x08 != 0 {
		ops := sortedOps()
		kind := "throttle"
		if b&0x10 != 0 {
			kind = "internal"
		}
		s.fault = &Fault{Op: ops[int(b>>5)*7%len(ops)], Kind: kind, Rate: 1}
	}
	return s
}

// newServed builds a fixture in a directory of its own; close removes it.
// tb only fails the test (a fixture may outlive the input that built it).
func newServed(tb testing.TB, s servedSetup) *served {
	tb.Helper()
	dir, err := os.MkdirTemp("", "fuzz-served-")
	if err != nil {
		tb.Fatal(err)
	}
	f := &served{tb: tb, dir: dir, clock: &fakeClock{frozen: servedEpoch}, errs: &errorCount{}, limits: s.limits, subst: map[string]string{}}
	f.open()
	f.build()
	return f
}

// open starts the fixture's server on its directory, as runnel serve
// starts: the store, the job manager (which starts the jobs that were
// running), the handler with its account settings file, the channels
// from their file.
func (f *served) open() {
	f.tb.Helper()
	log := slog.New(f.errs)
	var err error
	f.store, err = streams.Open(filepath.Join(f.dir, "streams"), streams.Options{Logger: log, UpdateVisibility: RecommendedUpdateVisibility, Now: f.clock.Now})
	if err != nil {
		f.close()
		f.tb.Fatal(err)
	}
	f.mgr, err = jobs.NewManager(jobs.ManagerConfig{Store: f.store, Dir: filepath.Join(f.dir, "jobs"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.close()
		f.tb.Fatal(err)
	}
	<-f.mgr.Booted() // its jobs start in the background
	opts := Options{Logger: log, ShardLimits: f.limits, ShardLimitScale: 0.01, TokenKey: []byte("fuzz-served-token-key-0123456789"),
		AccountSettingsFile: filepath.Join(f.dir, "kinesis-account.json"), Now: f.clock.Now,
		SubscriptionTTL: 20 * time.Millisecond, Heartbeat: 5 * time.Millisecond}
	f.h = newHandler(f.store, opts)
	if err := EnableChannels(f.h, ChannelOptions{Jobs: f.mgr, File: filepath.Join(f.dir, "kinesis-channels.json"),
		S3Endpoint: "http://127.0.0.1:1", S3PathStyle: true}); err != nil {
		f.close()
		f.tb.Fatal(err)
	}
}

// restart stops the server and starts it again on the same directory,
// with the same fault and caller.
func (f *served) restart() {
	faults := f.h.opts.Faults
	channelSets.Delete(f.h)
	f.mgr.Close()
	f.store.Close()
	f.h, f.mgr, f.store = nil, nil, nil
	f.open()
	f.h.opts.Faults = faults
}

func (f *served) close() {
	if f.h != nil {
		channelSets.Delete(f.h)
	}
	if f.mgr != nil {
		f.mgr.Close()
	}
	if f.store != nil {
		f.store.Close()
	}
	os.RemoveAll(f.dir)
}

// apply sets the input's fault and caller; they apply to the fuzzed
// calls, not to the fixture's making.
func (f *served) apply(s servedSetup) {
	f.h.opts.Faults = nil
	if s.fault != nil {
		f.h.opts.Faults = []Fault{*s.fault}
	}
	f.caller = nil
	switch s.who {
	case 1:
		f.caller = &Caller{Name: "admin", Admin: true}
	case 2:
		f.caller = &Caller{Name: "reader", Refusal: "User: reader (role read) is not authorized to perform this operation"}
	case 3:
		f.caller = &Caller{Name: "alice", Sees: func(s string) bool { return s == "f" }}
	}
}

// settle moves the clock past every CREATING, UPDATING and DELETING
// window.
func (f *served) settle() { f.clock.Advance(time.Second) }

// must makes a fixture call that has to succeed and returns its answer.
func (f *served) must(op, body string) map[string]any {
	f.tb.Helper()
	w := f.raw(op, contentJSON, []byte(f.expand(body)), nil, false)
	if w.Code != http.StatusOK {
		f.tb.Fatalf("fixture %s %s: %d %s", op, body, w.Code, w.Body.Bytes())
	}
	var out map[string]any
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			f.tb.Fatalf("fixture %s: %v", op, err)
		}
	}
	return out
}

func field(m map[string]any, path ...string) string {
	var v any = m
	for _, p := range path {
		mm, _ := v.(map[string]any)
		v = mm[p]
	}
	s, _ := v.(string)
	return s
}

// build makes the state the fuzzed calls act on.
func (f *served) build() {
	f.subst["$F"] = f.h.streamARN("f")
	f.subst["$G"] = f.h.streamARN("g")
	f.subst["$P"] = "arn:aws:iam::000000000000:user/alice"
	f.must("CreateStream", `{"StreamName":"f","ShardCount":4}`)
	f.must("CreateStream", `{"StreamName":"g","ShardCount":2}`)
	f.settle()
	f.must("PutRecords", `{"StreamName":"g","Records":[{"Data":"AAE=","PartitionKey":"a"},{"Data":"AAI=","PartitionKey":"b"},{"Data":"AAM=","PartitionKey":"c"}]}`)
	// g's first shard, closed by a split: shardId-000000000000 is
	// closed, 000000000002 and 000000000003 are its children.
	f.must("SplitShard", `{"StreamName":"g","ShardToSplit":"shardId-000000000000","NewStartingHashKey":"42535295865117307932921825928971026432"}`)
	f.settle()
	out := f.must("PutRecords", `{"StreamName":"f","Records":[{"Data":"eyJuIjoxfQ==","PartitionKey":"k1"},{"Data":"eyJuIjoyfQ==","PartitionKey":"k2"},{"Data":"","PartitionKey":"k3","ExplicitHashKey":"0"}]}`)
	recs, _ := out["Records"].([]any)
	for _, r := range recs {
		if m, _ := r.(map[string]any); field(m, "ShardId") == "shardId-000000000000" {
			f.subst["$S"] = field(m, "SequenceNumber")
		}
	}
	out = f.must("RegisterStreamConsumer", `{"StreamARN":"$F","ConsumerName":"c"}`)
	f.subst["$C"] = field(out, "Consumer", "ConsumerARN")
	f.settle()
	f.must("PutResourcePolicy", `{"ResourceARN":"$F","Policy":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"$P\"},\"Action\":\"kinesis:Get*\",\"Resource\":\"$F\"},{\"Effect\":\"Deny\",\"Principal\":\"*\",\"Action\":\"kinesis:DeleteStream\",\"Resource\":\"*\"}]}"}`)
	f.must("AddTagsToStream", `{"StreamName":"f","Tags":{"team":"data","env":"test"}}`)
	out = f.must("CreateChannel", channelBody("ch", "$F"))
	f.subst["$H"] = field(out, "ChannelDescription", "ChannelARN")
	out = f.must("GetShardIterator", `{"StreamName":"f","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}`)
	f.subst["$I"] = field(out, "ShardIterator")
	out = f.must("GetShardIterator", `{"StreamName":"g","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}`)
	f.subst["$J"] = field(out, "ShardIterator")
	f.settle()
	for k, v := range f.subst {
		if v == "" {
			f.tb.Fatalf("fixture: no value for %s", k)
		}
	}
}

func channelBody(name, streamARN string) string {
	return `{"ChannelName":"` + name + `","ServiceExecutionRoleARN":"arn:aws:iam::000000000000:role/delivery","StreamConfigurationList":[{"StreamARN":"` + streamARN +
		`","RecordConfiguration":{"RecordFormatType":"JSON"}}],"S3DestinationConfiguration":{"DataFreshnessInSeconds":60,"StorageConfiguration":{"BucketARN":"arn:aws:s3:::lake","CompressionType":"GZIP","ExpectedBucketOwner":"000000000000"}}}`
}

// expand replaces the placeholders of a JSON body by their values.
func (f *served) expand(body string) string {
	if !strings.Contains(body, "$") {
		return body
	}
	for k, v := range f.subst {
		body = strings.ReplaceAll(body, k, v)
	}
	return body
}

// expandCBOR replaces the placeholders of a CBOR body: each is a 2-byte
// text string ("$F" encodes as 0x62 '$' 'F').
func (f *served) expandCBOR(body []byte) []byte {
	if !bytes.Contains(body, []byte{0x62, '$'}) {
		return body
	}
	for k, v := range f.subst {
		enc, _ := cbor.Marshal(v)
		body = bytes.ReplaceAll(body, append([]byte{0x62}, k...), enc)
	}
	return body
}

// raw sends one request as web's authentication layer passes it on: with
// the caller in the context and, when preRead, the body already read.
func (f *served) raw(op, ct string, body []byte, c *Caller, preRead bool) *httptest.ResponseRecorder {
	req := opRequest(op, ct, body)
	ctx := req.Context()
	if c != nil {
		ctx = WithCaller(ctx, c)
	}
	if preRead {
		ctx = WithBody(ctx, body)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req.WithContext(ctx))
	return w
}

// call sends a fuzzed request (placeholders expanded) as the fixture's
// caller and checks the answer: no 5xx but an injected fault, an
// X-Amzn-ErrorType on every error, a body in the request's encoding.
func (f *served) call(t testing.TB, op string, useCBOR, preRead bool, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	ct := contentJSON
	if useCBOR {
		ct = contentCBOR
		body = f.expandCBOR(body)
	} else {
		body = []byte(f.expand(string(body)))
	}
	w := f.raw(op, ct, body, f.caller, preRead)
	f.check(t, op, useCBOR, body, w)
	return w
}

// failer is what check needs of a test.
type failer interface {
	Helper()
	Fatalf(format string, args ...any)
}

func (f *served) check(t failer, op string, useCBOR bool, body []byte, w *httptest.ResponseRecorder) {
	t.Helper()
	injected := w.Code == http.StatusInternalServerError && bytes.Contains(w.Body.Bytes(), []byte("Injected fault"))
	if w.Code >= 500 && !injected {
		t.Fatalf("%s (cbor %v) %q: status %d: %s", op, useCBOR, body, w.Code, w.Body.Bytes())
	}
	f.errs.mu.Lock()
	logged := f.errs.msgs
	f.errs.msgs = nil
	f.errs.mu.Unlock()
	if len(logged) > 0 {
		t.Fatalf("%s (cbor %v) %q: the handler logged %q (status %d: %s)", op, useCBOR, body, logged, w.Code, w.Body.Bytes())
	}
	if op == "SubscribeToShard" && w.Code == http.StatusOK {
		return
	}
	if w.Code != http.StatusOK && w.Header().Get("X-Amzn-ErrorType") == "" {
		t.Fatalf("%s (cbor %v) %q: error %d without X-Amzn-ErrorType: %s", op, useCBOR, body, w.Code, w.Body.Bytes())
	}
	if w.Body.Len() == 0 && w.Code == http.StatusOK {
		return
	}
	var v any
	var err error
	if useCBOR {
		err = cbor.Unmarshal(w.Body.Bytes(), &v)
	} else {
		err = json.Unmarshal(w.Body.Bytes(), &v)
	}
	if err != nil {
		t.Fatalf("%s (cbor %v) %q: status %d, the answer does not decode (%v): %q", op, useCBOR, body, w.Code, err, w.Body.Bytes())
	}
	if m, _ := v.(map[any]any); m != nil && w.Code != http.StatusOK {
		v = map[string]any{"__type": m["__type"]}
	}
	if m, _ := v.(map[string]any); w.Code != http.StatusOK && (m == nil || m["__type"] != w.Header().Get("X-Amzn-ErrorType")) {
		t.Fatalf("%s (cbor %v) %q: error %d typed %s, its body %q", op, useCBOR, body, w.Code, w.Header().Get("X-Amzn-ErrorType"), w.Body.Bytes())
	}
}

// servedSeeds are valid requests per operation, on the fixture's state.
var servedSeeds = map[string][]string{
	"CreateStream":                  {`{"StreamName":"n","ShardCount":2}`, `{"StreamName":"o","StreamModeDetails":{"StreamMode":"ON_DEMAND"},"Tags":{"a":"b"}}`},
	"DeleteStream":                  {`{"StreamName":"g"}`, `{"StreamARN":"$G","EnforceConsumerDeletion":true}`},
	"DescribeStream":                {`{"StreamName":"g","Limit":2,"ExclusiveStartShardId":"shardId-000000000000"}`, `{"StreamARN":"$F"}`},
	"DescribeStreamSummary":         {`{"StreamName":"g"}`, `{"StreamARN":"$F"}`},
	"ListStreams":                   {`{"Limit":1}`, `{"ExclusiveStartStreamName":"f"}`},
	"ListShards":                    {`{"StreamName":"g","ShardFilter":{"Type":"AFTER_SHARD_ID","ShardId":"shardId-000000000000"}}`, `{"StreamARN":"$F","MaxResults":2}`, `{"StreamName":"g","ShardFilter":{"Type":"AT_LATEST"}}`},
	"PutRecord":                     {`{"StreamName":"f","PartitionKey":"k","Data":"AAEC"}`, `{"StreamARN":"$F","PartitionKey":"k","Data":"","ExplicitHashKey":"7","SequenceNumberForOrdering":"$S"}`},
	"PutRecords":                    {`{"StreamName":"g","Records":[{"Data":"AAE=","PartitionKey":"k"},{"Data":"","PartitionKey":"k2","ExplicitHashKey":"7"}]}`},
	"GetShardIterator":              {`{"StreamName":"f","ShardId":"shardId-000000000000","ShardIteratorType":"AFTER_SEQUENCE_NUMBER","StartingSequenceNumber":"$S"}`, `{"StreamARN":"$G","ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1767322000}`},
	"GetRecords":                    {`{"ShardIterator":"$I","Limit":2}`, `{"ShardIterator":"$J","StreamARN":"$G"}`},
	"SplitShard":                    {`{"StreamName":"f","ShardToSplit":"shardId-000000000001","NewStartingHashKey":"100000000000000000000000000000000000000"}`, `{"StreamName":"g","ShardToSplit":"shardId-000000000002","NewStartingHashKey":"1000"}`},
	"MergeShards":                   {`{"StreamName":"f","ShardToMerge":"shardId-000000000000","AdjacentShardToMerge":"shardId-000000000001"}`, `{"StreamName":"g","ShardToMerge":"shardId-000000000002","AdjacentShardToMerge":"shardId-000000000003"}`},
	"UpdateShardCount":              {`{"StreamName":"f","TargetShardCount":2,"ScalingType":"UNIFORM_SCALING"}`, `{"StreamARN":"$G","TargetShardCount":6,"ScalingType":"UNIFORM_SCALING"}`},
	"IncreaseStreamRetentionPeriod": {`{"StreamName":"f","RetentionPeriodHours":48}`},
	"DecreaseStreamRetentionPeriod": {`{"StreamName":"f","RetentionPeriodHours":24}`},
	"AddTagsToStream":               {`{"StreamName":"g","Tags":{"x":"y"}}`},
	"RemoveTagsFromStream":          {`{"StreamName":"f","TagKeys":["team","nope"]}`},
	"ListTagsForStream":             {`{"StreamName":"f","Limit":1,"ExclusiveStartTagKey":"env"}`},
	"TagResource":                   {`{"ResourceARN":"$C","Tags":{"k":"v"}}`, `{"ResourceARN":"$F","Tags":{"k":"v"}}`},
	"UntagResource":                 {`{"ResourceARN":"$F","TagKeys":["team"]}`},
	"ListTagsForResource":           {`{"ResourceARN":"$F"}`, `{"ResourceARN":"$C"}`},
	"DescribeLimits":                {`{}`},
	"RegisterStreamConsumer":        {`{"StreamARN":"$G","ConsumerName":"d","Tags":{"a":"b"}}`},
	"DeregisterStreamConsumer":      {`{"ConsumerARN":"$C"}`, `{"StreamARN":"$F","ConsumerName":"c"}`},
	"DescribeStreamConsumer":        {`{"ConsumerARN":"$C"}`, `{"StreamARN":"$F","ConsumerName":"c"}`},
	"ListStreamConsumers":           {`{"StreamARN":"$F","MaxResults":1}`},
	"SubscribeToShard":              {`{"ConsumerARN":"$C","ShardId":"shardId-000000000000","StartingPosition":{"Type":"TRIM_HORIZON"}}`, `{"ConsumerARN":"$C","ShardId":"shardId-000000000000","StartingPosition":{"Type":"AFTER_SEQUENCE_NUMBER","SequenceNumber":"$S"}}`},
	"StartStreamEncryption":         {`{"StreamName":"f","EncryptionType":"KMS","KeyId":"alias/aws/kinesis"}`},
	"StopStreamEncryption":          {`{"StreamARN":"$F","EncryptionType":"KMS","KeyId":"alias/aws/kinesis"}`},
	"EnableEnhancedMonitoring":      {`{"StreamName":"f","ShardLevelMetrics":["IncomingBytes","ALL"]}`},
	"DisableEnhancedMonitoring":     {`{"StreamName":"f","ShardLevelMetrics":["ALL"]}`},
	"UpdateStreamMode":              {`{"StreamARN":"$F","StreamModeDetails":{"StreamMode":"ON_DEMAND"}}`, `{"StreamARN":"$G","StreamModeDetails":{"StreamMode":"PROVISIONED"},"WarmThroughputMiBps":10}`},
	"PutResourcePolicy": {`{"ResourceARN":"$C","Policy":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kinesis:SubscribeToShard\",\"Resource\":\"$C\"}]}"}`,
		`{"ResourceARN":"$G","Policy":"{\"Statement\":{\"Effect\":\"Deny\",\"NotPrincipal\":{\"AWS\":[\"$P\"]},\"NotAction\":\"kinesis:List*\",\"NotResource\":\"$F\"}}"}`},
	"GetResourcePolicy":                      {`{"ResourceARN":"$F"}`, `{"ResourceARN":"$C"}`},
	"DeleteResourcePolicy":                   {`{"ResourceARN":"$F"}`},
	"DescribeAccountSettings":                {`{}`},
	"UpdateAccountSettings":                  {`{"MinimumThroughputBillingCommitment":{"Status":"ENABLED"}}`, `{"MinimumThroughputBillingCommitment":{"Status":"DISABLED"}}`},
	"UpdateMaxRecordSize":                    {`{"StreamARN":"$F","MaxRecordSizeInKiB":10240}`},
	"UpdateStreamWarmThroughput":             {`{"StreamARN":"$F","WarmThroughputMiBps":20}`, `{"StreamName":"g","WarmThroughputMiBps":0}`},
	"UpdateStreamRecordDistributionStrategy": {`{"StreamARN":"$F","RecordDistributionStrategy":"AUTO"}`},
	"CreateChannel":                          {channelBody("ch2", "$G")},
	// The delivery job has failed (the S3 endpoint refuses connections):
	// an update starts it again.
	"UpdateChannel":   {`{"ChannelARN":"$H","S3DestinationConfiguration":{"DataFreshnessInSeconds":30}}`, `{"ChannelARN":"$H"}`},
	"DescribeChannel": {`{"ChannelARN":"$H"}`},
	"DeleteChannel":   {`{"ChannelARN":"$H"}`},
	"ListChannels":    {`{"MaxResults":1}`, `{"StreamFilter":[{"StreamARN":"$F"}]}`},
}

// servedErrorSeeds are requests the fixture refuses, each for a reason of
// its own state.
var servedErrorSeeds = map[string][]string{
	"CreateChannel":       {channelBody("ch", "$F")},                                                             // exists
	"SplitShard":          {`{"StreamName":"g","ShardToSplit":"shardId-000000000000","NewStartingHashKey":"1"}`}, // closed
	"ListTagsForResource": {`{"ResourceARN":"$H"}`},                                                              // not a stream's
	"UpdateChannel":       {`{"ChannelARN":"$H","S3DestinationConfiguration":{"DataFreshnessInSeconds":901}}`},
	"GetRecords":          {`{"ShardIterator":"$J","StreamARN":"$F"}`},
	"DeleteStream":        {`{"StreamName":"nope"}`, `{"StreamARN":"$F","EnforceConsumerDeletion":true}`}, // channel ch reads f
	"MergeShards":         {`{"StreamName":"g","ShardToMerge":"shardId-000000000001","AdjacentShardToMerge":"shardId-000000000003"}`},
	"DescribeChannel":     {`{"ChannelARN":"arn:aws:kinesis:us-east-1:000000000000:channel/nope"}`},
}

// toCBOR re-encodes a JSON seed as the SDKs' CBOR: integers as integers,
// Data fields as byte strings.
func toCBOR(tb testing.TB, s string) []byte {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		tb.Fatalf("seed %s: %v", s, err)
	}
	b, err := cbor.Marshal(cborValue("", v))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func cborValue(key string, v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		fl, _ := x.Float64()
		return fl
	case string:
		if key == "Data" {
			var b []byte
			_ = json.Unmarshal([]byte(`"`+x+`"`), &b)
			return b
		}
		return x
	case []any:
		for i := range x {
			x[i] = cborValue(key, x[i])
		}
		return x
	case map[string]any:
		for k := range x {
			x[k] = cborValue(k, x[k])
		}
		return x
	}
	return v
}

func opIndex(ops []string, name string) int {
	for i, op := range ops {
		if op == name {
			return i
		}
	}
	panic("no operation " + name)
}

// servedEnv gives the delivery jobs' S3 client credentials, so that it
// does not look for the instance metadata service.
func servedEnv(tb interface{ Setenv(k, v string) }) {
	tb.Setenv("AWS_REGION", "us-east-1")
	tb.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	tb.Setenv("AWS_CA_BUNDLE", "")
}

// readOnly operations leave the fixture as it was (but for the shard
// limits' counters), so the next input may use it again.
func readOnly(op string) bool {
	for _, p := range []string{"Describe", "List", "Get"} {
		if strings.HasPrefix(op, p) {
			return true
		}
	}
	return op == "SubscribeToShard"
}

// servedPool keeps a fixture (one with shard limits, one without) for
// the next input while the inputs leave it as it was: building one takes
// a few dozen milliseconds, most of a call's time.
type servedPool struct{ fx [2]*served }

func (p *servedPool) get(t testing.TB, s servedSetup) *served {
	i := 0
	if s.limits {
		i = 1
	}
	fx := p.fx[i]
	if fx == nil || fx.uses >= 200 {
		if fx != nil {
			fx.close()
		}
		fx = newServed(t, s)
		p.fx[i] = fx
	}
	fx.tb = t
	fx.uses++
	// The throughput limits refill with time: a second per call keeps
	// them from throttling every call of a long-lived fixture.
	fx.clock.Advance(time.Second)
	fx.apply(s)
	return fx
}

// done drops the fixture after a call that may have changed it.
func (p *servedPool) done(fx *served, op string, w *httptest.ResponseRecorder) {
	if readOnly(op) && w.Code < 500 {
		return
	}
	for i := range p.fx {
		if p.fx[i] == fx {
			fx.close()
			p.fx[i] = nil
		}
	}
}

func (p *servedPool) close() {
	for _, fx := range p.fx {
		if fx != nil {
			fx.close()
		}
	}
}

// FuzzServedRequest sends one fuzzed request, in either encoding, to
// every operation of a handler set up as runnel serve's, with streams, a
// consumer, a resource policy and a channel to act on: never a panic,
// never a 5xx but an injected fault, never an error without its type.
// The setup byte chooses the shard limits, an injected fault, the caller
// and whether the body comes read already.
func FuzzServedRequest(f *testing.F) {
	servedEnv(f)
	ops := sortedOps()
	for op, bodies := range servedSeeds {
		bodies = append(bodies, servedErrorSeeds[op]...)
		for i, b := range bodies {
			setup := uint8(i * 2) // no caller, then an admin
			f.Add(uint8(opIndex(ops, op)), setup, false, []byte(b))
			f.Add(uint8(opIndex(ops, op)), setup|1, true, toCBOR(f, b))
		}
	}
	f.Add(uint8(opIndex(ops, "GetRecords")), uint8(4), false, []byte(`{"ShardIterator":"$I"}`))
	f.Add(uint8(opIndex(ops, "ListStreams")), uint8(6), true, toCBOR(f, `{}`))
	pool := &servedPool{}
	f.Cleanup(pool.close)
	f.Fuzz(func(t *testing.T, op uint8, setup uint8, useCBOR bool, body []byte) {
		name := ops[int(op)%len(ops)]
		s := setupOf(setup)
		fx := pool.get(t, s)
		w := fx.call(t, name, useCBOR, setup&0x80 != 0, body)
		pool.done(fx, name, w)
	})
}

// TestServedSeeds checks that the seeds are what they are meant to be:
// valid requests, in JSON and in CBOR, that a fresh fixture answers with
// 200.
func TestServedSeeds(t *testing.T) {
	servedEnv(t)
	for op, bodies := range servedSeeds {
		for _, b := range bodies {
			for _, useCBOR := range []bool{false, true} {
				fx := newServed(t, servedSetup{})
				body := []byte(b)
				if useCBOR {
					body = toCBOR(t, b)
				}
				w := fx.call(t, op, useCBOR, false, body)
				if w.Code != http.StatusOK {
					t.Errorf("%s (cbor %v) %s: %d %s", op, useCBOR, b, w.Code, w.Body.Bytes())
				}
				fx.close()
			}
		}
	}
}

// TestEmptyCBORBody sends every operation an empty CBOR body, CBOR null
// and an empty CBOR map, on a bare handler and on a served one: each is
// an input without members, answered as JSON's "{}" (the operations with
// required members with AWS's ValidationException), and none crashes.
func TestEmptyCBORBody(t *testing.T) {
	servedEnv(t)
	fx := newServed(t, servedSetup{})
	defer fx.close()
	bare, _ := storeHandler(t, Options{CreateDelay: -1, Logger: slog.New(fx.errs)}, "f", 2)
	for i, h := range []*Handler{bare, fx.h} {
		f := &served{tb: t, h: h, errs: fx.errs}
		for _, op := range sortedOps() {
			if op == "SubscribeToShard" {
				continue // answered as a stream of events
			}
			ref := f.raw(op, contentJSON, []byte("{}"), nil, false)
			f.check(t, op, false, []byte("{}"), ref)
			for _, body := range [][]byte{{}, {0xf6}, {0xa0}} {
				w := f.raw(op, contentCBOR, body, nil, false)
				f.check(t, op, true, body, w)
				if w.Code != ref.Code || w.Header().Get("X-Amzn-ErrorType") != ref.Header().Get("X-Amzn-ErrorType") {
					t.Errorf("handler %d %s: CBOR %x answers %d %s, JSON {} %d %s", i, op, body,
						w.Code, w.Header().Get("X-Amzn-ErrorType"), ref.Code, ref.Header().Get("X-Amzn-ErrorType"))
				}
			}
		}
	}
}

// TestChannelNameReused deletes a channel and creates one of the same
// name: the deleted channel's stopped delivery job gives way to the new
// one, as a deleted channel's name is free again on AWS.
func TestChannelNameReused(t *testing.T) {
	servedEnv(t)
	fx := newServed(t, servedSetup{})
	defer fx.close()
	if w := fx.call(t, "DeleteChannel", false, false, []byte(`{"ChannelARN":"$H"}`)); w.Code != http.StatusOK {
		t.Fatalf("DeleteChannel: %d %s", w.Code, w.Body.Bytes())
	}
	fx.settle()
	w := fx.call(t, "CreateChannel", false, false, []byte(channelBody("ch", "$G")))
	if w.Code != http.StatusOK {
		t.Fatalf("CreateChannel after DeleteChannel: %d %s", w.Code, w.Body.Bytes())
	}
	var out channelOutput
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	fx.settle()
	w = fx.call(t, "DescribeChannel", false, false, []byte(`{"ChannelARN":"$H"}`))
	var d channelOutput
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil || w.Code != http.StatusOK || d.ChannelDescription.ChannelId != out.ChannelDescription.ChannelId ||
		d.ChannelDescription.StreamConfigurationList[0].StreamARN != fx.subst["$G"] {
		t.Fatalf("DescribeChannel: %d %s", w.Code, w.Body.Bytes())
	}
	// The name is taken again.
	w = fx.call(t, "CreateChannel", false, false, []byte(channelBody("ch", "$F")))
	if w.Code != http.StatusBadRequest || w.Header().Get("X-Amzn-ErrorType") != excResourceInUse {
		t.Fatalf("CreateChannel of an existing channel: %d %s", w.Code, w.Body.Bytes())
	}
}
