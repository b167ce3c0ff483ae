package kinesis

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// FuzzServedSequence runs a few operations in a row, read from the input,
// on a fresh fixture set up as runnel serve's (see newServed): streams
// created, deleted, resharded, tagged; consumers, policies and channels
// made and dropped; records written and read; the clock moved; the
// caller changed. After every step a set of read-only calls looks at
// what the step left. Every answer is checked as in FuzzServedRequest,
// and the open shards of each stream ListShards shows must cover the hash
// key space once.
//
// The input's first byte is the fixture's setup (see setupOf) and its top
// bit the encoding (CBOR when set); each step is three bytes: the step,
// then two arguments. With SEQDEBUG set in the environment, each step's
// answer is logged (go test -v).
func FuzzServedSequence(f *testing.F) {
	servedEnv(f)
	for _, s := range [][]byte{
		{0, 0, 0, 2, 2, 0, 3, 14, 0, 5, 16, 1, 0},
		{0x80, 2, 1, 0, 3, 1, 1, 11, 1, 0, 16, 2, 0, 1, 1, 1},
		{0, 9, 1, 1, 7, 4, 0, 10, 1, 0, 8, 4, 0, 1, 0, 1},
		{2, 4, 1, 3, 16, 1, 0, 4, 1, 7, 24, 1, 2, 15, 1, 0},
		{6, 21, 3, 0, 7, 0, 1, 1, 0, 0, 12, 0, 0, 11, 0, 0},
		{0x81, 0, 2, 3, 14, 2, 0, 2, 2, 0x22, 16, 1, 0, 3, 2, 0x23, 15, 2, 2},
		{0, 17, 0, 1, 19, 0, 2, 20, 0, 1, 18, 0, 1, 13, 0, 30, 22, 0, 0},
		{0, 1, 0, 0, 16, 3, 0, 0, 0, 3, 9, 0, 0, 11, 0, 0, 1, 0, 0},
		{0, 11, 1, 0, 1, 1, 1, 16, 2, 0, 0, 1, 2, 16, 1, 0, 13, 1, 0},
		{0, 25, 0, 0, 23, 0, 1, 16, 3, 0, 15, 0, 3},
		{0, 20, 0, 0, 7, 1, 1, 9, 1, 0, 26, 0, 0, 15, 0, 0, 13, 0, 4, 12, 0, 1, 26, 0, 0},
		{0, 12, 0, 0, 11, 0, 0},         // a channel's name again
		{0, 7, 0, 2, 10, 0, 2, 9, 0, 0}, // a consumer's name again, after its policy
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		fx := newServed(t, setupOf(in[0]&0x7f))
		defer fx.close()
		fx.apply(setupOf(in[0] & 0x7f))
		q := &sequence{fx: fx, t: t, cbor: in[0]&0x80 != 0, consumers: map[string]string{"f/c": fx.subst["$C"]}}
		in = in[1:]
		for i := 0; i+3 <= len(in) && i < 3*24; i += 3 {
			q.step(in[i], in[i+1], in[i+2])
			q.observe()
		}
	})
}

type sequence struct {
	fx        *served
	t         *testing.T
	cbor      bool
	consumers map[string]string // "stream/name" → ARN
	log       []string          // the steps so far, for failure messages
	observing bool              // observe's calls are not logged
}

var (
	seqStreams   = []string{"f", "g", "n"}
	seqConsumers = []string{"c", "d"}
	seqChannels  = []string{"ch", "ch2"}
	seqHashKeys  = []string{"1", "2", "1000", "85070591730234615865843651857942052864", "170141183460469231731687303715884105728",
		"170141183460469231731687303715884105727", "340282366920938463463374607431768211455", "340282366920938463463374607431768211456", "0", "-1"}
	seqSteps = []string{"CreateStream", "DeleteStream", "SplitShard", "MergeShards", "UpdateShardCount", "AddTagsToStream",
		"RemoveTagsFromStream", "PutResourcePolicy", "DeleteResourcePolicy", "RegisterStreamConsumer", "DeregisterStreamConsumer",
		"CreateChannel", "DeleteChannel", "UpdateChannel", "PutRecords", "GetRecords", "advance", "UpdateStreamMode",
		"StartStreamEncryption", "UpdateMaxRecordSize", "UpdateAccountSettings", "caller", "SubscribeToShard",
		"IncreaseStreamRetentionPeriod", "TagResource", "UpdateStreamWarmThroughput", "restart"}
	seqAdvance = []time.Duration{100 * time.Millisecond, time.Second, 6 * time.Minute, 25 * time.Hour}
)

func shardID(n byte) string { return fmt.Sprintf("shardId-%012d", n%8) }

// consumerARN is the ARN of a consumer the sequence registered, or one
// that never was.
func (q *sequence) consumerARN(stream, name string) string {
	if arn, ok := q.consumers[stream+"/"+name]; ok {
		return arn
	}
	return q.fx.h.streamARN(stream) + "/consumer/" + name + ":1767323045"
}

func (q *sequence) policy(arn string, deny bool) string {
	effect := "Allow"
	if deny {
		effect = "Deny"
	}
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"` + effect + `","Principal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":"kinesis:*","Resource":"` + arn + `"}]}`
	b, _ := json.Marshal(doc)
	return string(b)
}

func (q *sequence) step(kind, a, b byte) {
	name := seqSteps[int(kind)%len(seqSteps)]
	s := seqStreams[int(a)%len(seqStreams)]
	arn := q.fx.h.streamARN(s)
	var body string
	switch name {
	case "CreateStream":
		if b&0x10 != 0 {
			body = fmt.Sprintf(`{"StreamName":%q,"StreamModeDetails":{"StreamMode":"ON_DEMAND"}}`, s)
		} else {
			body = fmt.Sprintf(`{"StreamName":%q,"ShardCount":%d}`, s, 1+b%4)
		}
	case "DeleteStream":
		body = fmt.Sprintf(`{"StreamARN":%q,"EnforceConsumerDeletion":%v}`, arn, b&1 != 0)
	case "SplitShard":
		body = fmt.Sprintf(`{"StreamName":%q,"ShardToSplit":%q,"NewStartingHashKey":%q}`, s, shardID(a>>2), seqHashKeys[int(b)%len(seqHashKeys)])
	case "MergeShards":
		body = fmt.Sprintf(`{"StreamName":%q,"ShardToMerge":%q,"AdjacentShardToMerge":%q}`, s, shardID(b), shardID(b>>4))
	case "UpdateShardCount":
		body = fmt.Sprintf(`{"StreamName":%q,"TargetShardCount":%d,"ScalingType":"UNIFORM_SCALING"}`, s, 1+b%8)
	case "AddTagsToStream":
		body = fmt.Sprintf(`{"StreamName":%q,"Tags":{"t%d":"v"}}`, s, b%4)
	case "RemoveTagsFromStream":
		body = fmt.Sprintf(`{"StreamName":%q,"TagKeys":["t%d","team"]}`, s, b%4)
	case "TagResource":
		body = fmt.Sprintf(`{"ResourceARN":%q,"Tags":{"t%d":"v"}}`, q.consumerARN(s, seqConsumers[b%2]), b%4)
	case "PutResourcePolicy", "DeleteResourcePolicy":
		target := arn
		if b&2 != 0 {
			target = q.consumerARN(s, seqConsumers[(b>>2)%2])
		}
		if name == "DeleteResourcePolicy" {
			body = fmt.Sprintf(`{"ResourceARN":%q}`, target)
		} else {
			body = fmt.Sprintf(`{"ResourceARN":%q,"Policy":%s}`, target, q.policy(target, b&1 != 0))
		}
	case "RegisterStreamConsumer":
		body = fmt.Sprintf(`{"StreamARN":%q,"ConsumerName":%q}`, arn, seqConsumers[b%2])
	case "DeregisterStreamConsumer":
		c := seqConsumers[b%2]
		if b&2 != 0 {
			body = fmt.Sprintf(`{"ConsumerARN":%q}`, q.consumerARN(s, c))
		} else {
			body = fmt.Sprintf(`{"StreamARN":%q,"ConsumerName":%q}`, arn, c)
		}
	case "SubscribeToShard":
		body = fmt.Sprintf(`{"ConsumerARN":%q,"ShardId":%q,"StartingPosition":{"Type":"TRIM_HORIZON"}}`, q.consumerARN(s, seqConsumers[b%2]), shardID(b>>1))
	case "CreateChannel":
		body = channelBody(seqChannels[b%2], arn)
	case "DeleteChannel":
		body = fmt.Sprintf(`{"ChannelARN":%q}`, q.fx.h.channelARN(seqChannels[b%2]))
	case "UpdateChannel":
		body = fmt.Sprintf(`{"ChannelARN":%q,"S3DestinationConfiguration":{"DataFreshnessInSeconds":%d}}`, q.fx.h.channelARN(seqChannels[b%2]), int(b)*4)
	case "PutRecords":
		recs := ""
		for i := 0; i < 1+int(b%5); i++ {
			if i > 0 {
				recs += ","
			}
			recs += fmt.Sprintf(`{"Data":"eyJuIjoxfQ==","PartitionKey":"k%d%d"}`, b, i)
		}
		body = fmt.Sprintf(`{"StreamName":%q,"Records":[%s]}`, s, recs)
	case "GetRecords":
		q.read(s, shardID(b), b&0x80 != 0)
		return
	case "advance":
		d := seqAdvance[int(b)%len(seqAdvance)]
		q.log = append(q.log, "advance "+d.String())
		q.fx.clock.Advance(d)
		return
	case "restart":
		q.log = append(q.log, "restart")
		q.fx.restart()
		return
	case "caller":
		q.log = append(q.log, fmt.Sprintf("caller %d", a%4))
		s := setupOf(0)
		s.who = int(a % 4)
		s.fault = setupOf(b).fault
		q.fx.apply(s)
		return
	case "UpdateStreamMode":
		mode := []string{"ON_DEMAND", "PROVISIONED"}[b%2]
		body = fmt.Sprintf(`{"StreamARN":%q,"StreamModeDetails":{"StreamMode":%q}}`, arn, mode)
	case "StartStreamEncryption":
		body = fmt.Sprintf(`{"StreamName":%q,"EncryptionType":"KMS","KeyId":"alias/aws/kinesis"}`, s)
		if b&1 != 0 {
			name = "StopStreamEncryption"
		}
	case "UpdateMaxRecordSize":
		body = fmt.Sprintf(`{"StreamARN":%q,"MaxRecordSizeInKiB":%d}`, arn, []int{1024, 2048, 10240, 1023}[b%4])
	case "UpdateStreamWarmThroughput":
		body = fmt.Sprintf(`{"StreamARN":%q,"WarmThroughputMiBps":%d}`, arn, int(b)*4)
	case "UpdateAccountSettings":
		body = fmt.Sprintf(`{"MinimumThroughputBillingCommitment":{"Status":%q}}`, []string{"ENABLED", "DISABLED"}[b%2])
	case "IncreaseStreamRetentionPeriod":
		if b&1 != 0 {
			name = "DecreaseStreamRetentionPeriod"
		}
		body = fmt.Sprintf(`{"StreamName":%q,"RetentionPeriodHours":%d}`, s, []int{24, 48, 168, 8760}[(b>>1)%4])
	}
	w := q.call(name, body)
	fail := (&seqTB{q}).Fatalf
	if typ := w.Type; typ == excSerialization || name == "CreateChannel" && typ == excInvalidArgument {
		// The steps' bodies are well formed, and their channels valid.
		fail("%s: %s", name, w.Body.Bytes())
	}
	if w.Code != http.StatusOK {
		return
	}
	// A new resource is new: nothing of one deleted before it under its
	// name is left to it.
	switch name {
	case "RegisterStreamConsumer":
		var out struct{ Consumer struct{ ConsumerARN string } }
		if q.decode(w.Body.Bytes(), &out) == nil {
			q.consumers[s+"/"+seqConsumers[b%2]] = out.Consumer.ConsumerARN
			q.noPolicy(out.Consumer.ConsumerARN)
		}
	case "CreateStream":
		q.noPolicy(arn)
		var tags struct{ Tags []struct{ Key string } }
		if w := q.call("ListTagsForStream", fmt.Sprintf(`{"StreamName":%q}`, s)); w.Code == http.StatusOK && q.decode(w.Body.Bytes(), &tags) == nil && len(tags.Tags) > 0 {
			fail("new stream %s has tags %+v", s, tags.Tags)
		}
		var cons struct {
			Consumers []struct{ ConsumerName string }
		}
		if w := q.call("ListStreamConsumers", fmt.Sprintf(`{"StreamARN":%q}`, arn)); w.Code == http.StatusOK && q.decode(w.Body.Bytes(), &cons) == nil && len(cons.Consumers) > 0 {
			fail("new stream %s has consumers %+v", s, cons.Consumers)
		}
	}
}

// noPolicy checks that a new resource has no resource policy.
func (q *sequence) noPolicy(arn string) {
	var out struct{ Policy string }
	if w := q.call("GetResourcePolicy", fmt.Sprintf(`{"ResourceARN":%q}`, arn)); w.Code == http.StatusOK && q.decode(w.Body.Bytes(), &out) == nil && out.Policy != "{}" {
		(&seqTB{q}).Fatalf("new resource %s has a policy: %s", arn, out.Policy)
	}
}

// call sends a request in the sequence's encoding and checks the answer.
func (q *sequence) call(op, body string) *answer {
	q.t.Helper()
	if !q.observing {
		q.log = append(q.log, op+" "+body)
	}
	b := []byte(body)
	if q.cbor {
		b = toCBOR(q.t, body)
	}
	w := q.fx.raw(op, q.ct(), b, q.fx.caller, false)
	q.fx.check(&seqTB{q}, op, q.cbor, b, w)
	if seqDebug && !strings.HasPrefix(op, "Describe") && !strings.HasPrefix(op, "List") && op != "GetResourcePolicy" {
		q.t.Logf("%s %s -> %d %.200s", op, body, w.Code, w.Body.Bytes())
	}
	return &answer{Code: w.Code, Type: w.Header().Get("X-Amzn-ErrorType"), Body: w.Body}
}

var seqDebug = os.Getenv("SEQDEBUG") != ""

type answer struct {
	Code int
	Type string
	Body interface{ Bytes() []byte }
}

func (q *sequence) ct() string {
	if q.cbor {
		return contentCBOR
	}
	return contentJSON
}

func (q *sequence) decode(b []byte, v any) error {
	if q.cbor {
		return cbor.Unmarshal(b, v)
	}
	return json.Unmarshal(b, v)
}

// seqTB fails the sequence with the steps that led to the failure.
type seqTB struct{ q *sequence }

func (s *seqTB) Helper() {}
func (s *seqTB) Fatalf(format string, args ...any) {
	s.q.t.Helper()
	s.q.t.Fatalf("after\n  %s\n%s", joinLines(s.q.log), fmt.Sprintf(format, args...))
}

func joinLines(l []string) string {
	out := ""
	for i, s := range l {
		if i > 0 {
			out += "\n  "
		}
		out += s
	}
	return out
}

// read takes an iterator on a shard and follows it a few pages.
func (q *sequence) read(stream, shard string, latest bool) {
	typ := "TRIM_HORIZON"
	if latest {
		typ = "LATEST"
	}
	w := q.call("GetShardIterator", fmt.Sprintf(`{"StreamName":%q,"ShardId":%q,"ShardIteratorType":%q}`, stream, shard, typ))
	var it struct{ ShardIterator *string }
	if w.Code != http.StatusOK || q.decode(w.Body.Bytes(), &it) != nil || it.ShardIterator == nil {
		return
	}
	for i := 0; i < 3 && it.ShardIterator != nil; i++ {
		var out struct{ NextShardIterator *string }
		w := q.call("GetRecords", fmt.Sprintf(`{"ShardIterator":%q,"Limit":2}`, *it.ShardIterator))
		if w.Code != http.StatusOK || q.decode(w.Body.Bytes(), &out) != nil {
			return
		}
		it.ShardIterator = out.NextShardIterator
	}
}

type listedShard struct {
	ShardId             string
	HashKeyRange        struct{ StartingHashKey, EndingHashKey string }
	SequenceNumberRange struct {
		StartingSequenceNumber string
		EndingSequenceNumber   *string
	}
}

var maxHashKey = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// observe looks at the state with read-only calls.
func (q *sequence) observe() {
	q.observing = true
	defer func() { q.observing = false }()
	q.call("ListStreams", `{}`)
	q.call("ListChannels", `{}`)
	q.call("DescribeAccountSettings", `{}`)
	for _, c := range seqChannels {
		q.call("DescribeChannel", fmt.Sprintf(`{"ChannelARN":%q}`, q.fx.h.channelARN(c)))
	}
	for _, s := range seqStreams {
		arn := q.fx.h.streamARN(s)
		q.call("DescribeStreamSummary", fmt.Sprintf(`{"StreamName":%q}`, s))
		q.call("DescribeStream", fmt.Sprintf(`{"StreamARN":%q,"Limit":3}`, arn))
		q.call("ListStreamConsumers", fmt.Sprintf(`{"StreamARN":%q}`, arn))
		q.call("GetResourcePolicy", fmt.Sprintf(`{"ResourceARN":%q}`, arn))
		q.call("ListTagsForStream", fmt.Sprintf(`{"StreamName":%q}`, s))
		for _, c := range seqConsumers {
			q.call("DescribeStreamConsumer", fmt.Sprintf(`{"ConsumerARN":%q}`, q.consumerARN(s, c)))
		}
		w := q.call("ListShards", fmt.Sprintf(`{"StreamName":%q}`, s))
		var out struct {
			Shards    []listedShard
			NextToken *string
		}
		if w.Code == http.StatusOK && q.decode(w.Body.Bytes(), &out) == nil && out.NextToken == nil {
			q.covers(s, out.Shards)
		}
	}
}

// covers checks that the open shards' hash key ranges cover 0 to
// 2^128-1 once.
func (q *sequence) covers(stream string, shards []listedShard) {
	type span struct{ lo, hi *big.Int }
	var open []span
	for _, sh := range shards {
		if sh.SequenceNumberRange.EndingSequenceNumber != nil {
			continue
		}
		lo, ok1 := new(big.Int).SetString(sh.HashKeyRange.StartingHashKey, 10)
		hi, ok2 := new(big.Int).SetString(sh.HashKeyRange.EndingHashKey, 10)
		if !ok1 || !ok2 {
			(&seqTB{q}).Fatalf("ListShards %s: shard %s has hash keys %q-%q", stream, sh.ShardId, sh.HashKeyRange.StartingHashKey, sh.HashKeyRange.EndingHashKey)
		}
		open = append(open, span{lo, hi})
	}
	sort.Slice(open, func(i, j int) bool { return open[i].lo.Cmp(open[j].lo) < 0 })
	next := big.NewInt(0)
	for _, sp := range open {
		if sp.lo.Cmp(next) != 0 || sp.hi.Cmp(sp.lo) < 0 {
			(&seqTB{q}).Fatalf("ListShards %s: open shards do not cover the hash key space once: %+v", stream, shards)
		}
		next = new(big.Int).Add(sp.hi, big.NewInt(1))
	}
	if len(open) > 0 && next.Cmp(new(big.Int).Add(maxHashKey, big.NewInt(1))) != 0 {
		(&seqTB{q}).Fatalf("ListShards %s: open shards end at %s, not 2^128-1: %+v", stream, next, shards)
	}
}
