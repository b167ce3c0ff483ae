package kinesis

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

const testARN = "arn:aws:kinesis:us-east-1:000000000000:stream/"

func TestResourcePolicies(t *testing.T) {
	e := newEnv(t, nil)
	c := ctx(t)
	e.create("pol", 1)
	arn := aws.String(testARN + "pol")
	got, err := e.client.GetResourcePolicy(c, &sdk.GetResourcePolicyInput{ResourceARN: arn})
	if err != nil || *got.Policy != "{}" {
		t.Fatalf("policy of a fresh stream: %v %v", got, err)
	}
	_, err = e.client.DeleteResourcePolicy(c, &sdk.DeleteResourcePolicyInput{ResourceARN: arn})
	apiErr(t, err, "ResourceNotFoundException", "No resource policy found for resource ARN "+*arn+".")
	doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kinesis:GetRecords","Resource":"` + *arn + `"}]}`
	if _, err := e.client.PutResourcePolicy(c, &sdk.PutResourcePolicyInput{ResourceARN: arn, Policy: aws.String(doc)}); err != nil {
		t.Fatal(err)
	}
	got, err = e.client.GetResourcePolicy(c, &sdk.GetResourcePolicyInput{ResourceARN: arn})
	if err != nil || *got.Policy != doc {
		t.Fatalf("stored policy: %v %v", got, err)
	}
	_, err = e.client.PutResourcePolicy(c, &sdk.PutResourcePolicyInput{ResourceARN: arn, Policy: aws.String("{not json")})
	apiErr(t, err, "InvalidArgumentException", "Policy is not a JSON document.")
	_, err = e.client.GetResourcePolicy(c, &sdk.GetResourcePolicyInput{ResourceARN: aws.String(testARN + "nope")})
	apiErr(t, err, "ResourceNotFoundException", "Stream nope under account 000000000000 not found.")
	if _, err := e.client.DeleteResourcePolicy(c, &sdk.DeleteResourcePolicyInput{ResourceARN: arn}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.client.GetResourcePolicy(c, &sdk.GetResourcePolicyInput{ResourceARN: arn}); *got.Policy != "{}" {
		t.Fatalf("policy after delete: %s", *got.Policy)
	}
}

func TestAccountSettingsPersist(t *testing.T) {
	file := filepath.Join(t.TempDir(), "account.json")
	e := newEnv(t, func(o *Options) { o.AccountSettingsFile = file })
	c := ctx(t)
	e.clock.Freeze()
	got, err := e.client.DescribeAccountSettings(c, &sdk.DescribeAccountSettingsInput{})
	if err != nil || got.MinimumThroughputBillingCommitment.Status != types.MinimumThroughputBillingCommitmentOutputStatusDisabled {
		t.Fatalf("fresh account: %+v %v", got, err)
	}
	up, err := e.client.UpdateAccountSettings(c, &sdk.UpdateAccountSettingsInput{MinimumThroughputBillingCommitment: &types.MinimumThroughputBillingCommitmentInput{Status: "ENABLED"}})
	if err != nil || up.MinimumThroughputBillingCommitment.Status != "ENABLED" || up.MinimumThroughputBillingCommitment.EarliestAllowedEndAt == nil {
		t.Fatalf("enable: %+v %v", up, err)
	}
	up, err = e.client.UpdateAccountSettings(c, &sdk.UpdateAccountSettingsInput{MinimumThroughputBillingCommitment: &types.MinimumThroughputBillingCommitmentInput{Status: "DISABLED"}})
	if err != nil || up.MinimumThroughputBillingCommitment.Status != "ENABLED_UNTIL_EARLIEST_ALLOWED_END" {
		t.Fatalf("disable within the term: %+v %v", up, err)
	}
	// A handler over the same file (a restart) reports the same state.
	h2 := newHandler(e.store, Options{AccountSettingsFile: file, Now: e.clock.Now})
	if s := h2.accountOut(e.clock.Now()).MinimumThroughputBillingCommitment.Status; s != "ENABLED_UNTIL_EARLIEST_ALLOWED_END" {
		t.Fatalf("after restart: %s", s)
	}
	e.clock.Advance(commitmentTerm)
	got, _ = e.client.DescribeAccountSettings(c, &sdk.DescribeAccountSettingsInput{})
	if got.MinimumThroughputBillingCommitment.Status != "DISABLED" {
		t.Fatalf("after the term: %s", got.MinimumThroughputBillingCommitment.Status)
	}
	_, err = e.client.UpdateAccountSettings(c, &sdk.UpdateAccountSettingsInput{MinimumThroughputBillingCommitment: &types.MinimumThroughputBillingCommitmentInput{Status: "MAYBE"}})
	apiErr(t, err, "ValidationException", "1 validation error detected: Value 'MAYBE' at 'minimumThroughputBillingCommitment.status' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]")
}

func TestMaxRecordSizeEnforced(t *testing.T) {
	e := newEnv(t, nil)
	c := ctx(t)
	e.create("big", 1)
	e.create("small", 1)
	twoMiB := make([]byte, 2<<20)
	_, err := e.client.PutRecord(c, &sdk.PutRecordInput{StreamName: aws.String("big"), PartitionKey: aws.String("k"), Data: twoMiB})
	apiErr(t, err, "ValidationException", "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=2097152 cap=2097152]' at 'data' failed to satisfy constraint: Member must have length less than or equal to 1048576")
	_, err = e.client.UpdateMaxRecordSize(c, &sdk.UpdateMaxRecordSizeInput{StreamARN: aws.String(testARN + "big"), MaxRecordSizeInKiB: aws.Int32(20000)})
	apiErr(t, err, "ValidationException", "1 validation error detected: Value '20000' at 'maxRecordSizeInKiB' failed to satisfy constraint: Member must have value less than or equal to 10240")
	if _, err := e.client.UpdateMaxRecordSize(c, &sdk.UpdateMaxRecordSizeInput{StreamARN: aws.String(testARN + "big"), MaxRecordSizeInKiB: aws.Int32(4096)}); err != nil {
		t.Fatal(err)
	}
	p, err := e.client.PutRecord(c, &sdk.PutRecordInput{StreamName: aws.String("big"), PartitionKey: aws.String("k"), Data: twoMiB})
	if err != nil {
		t.Fatalf("2 MiB record into a 4 MiB stream: %v", err)
	}
	// The other stream keeps its 1 MiB.
	_, err = e.client.PutRecords(c, &sdk.PutRecordsInput{StreamName: aws.String("small"), Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("k"), Data: twoMiB}}})
	apiErr(t, err, "ValidationException", "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=2097152 cap=2097152]' at 'records.1.member.data' failed to satisfy constraint: Member must have length less than or equal to 1048576")
	it, _ := e.client.GetShardIterator(c, &sdk.GetShardIteratorInput{StreamName: aws.String("big"), ShardId: p.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	recs, err := e.client.GetRecords(c, &sdk.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || len(recs.Records) != 1 || len(recs.Records[0].Data) != len(twoMiB) {
		t.Fatalf("read back the 2 MiB record: %v", err)
	}
	sum, _ := e.client.DescribeStreamSummary(c, &sdk.DescribeStreamSummaryInput{StreamName: aws.String("big")})
	if sum.StreamDescriptionSummary.MaxRecordSizeInKiB == nil || *sum.StreamDescriptionSummary.MaxRecordSizeInKiB != 4096 {
		t.Fatalf("summary: %+v", sum.StreamDescriptionSummary.MaxRecordSizeInKiB)
	}
}

func TestAutoDistributionSpreadsEvenly(t *testing.T) {
	e := newEnv(t, nil)
	c := ctx(t)
	e.create("auto", 4)
	if _, err := e.client.UpdateStreamRecordDistributionStrategy(c, &sdk.UpdateStreamRecordDistributionStrategyInput{StreamARN: aws.String(testARN + "auto"), RecordDistributionStrategy: types.RecordDistributionStrategyAuto}); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	recs := make([]types.PutRecordsRequestEntry, 100)
	for i := range recs {
		recs[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("same-key"), Data: []byte("x")}
	}
	out, err := e.client.PutRecords(c, &sdk.PutRecordsInput{StreamName: aws.String("auto"), Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Records {
		counts[*r.ShardId]++
	}
	for i := 0; i < 20; i++ {
		p, err := e.client.PutRecord(c, &sdk.PutRecordInput{StreamName: aws.String("auto"), PartitionKey: aws.String("same-key"), Data: []byte("y")})
		if err != nil {
			t.Fatal(err)
		}
		counts[*p.ShardId]++
	}
	if len(counts) != 4 {
		t.Fatalf("AUTO put one partition key's records on %d shards, want all 4: %v", len(counts), counts)
	}
	for id, n := range counts {
		if n != 30 {
			t.Errorf("shard %s got %d of 120 records, want 30: %v", id, n, counts)
		}
	}
	w, err := e.client.UpdateStreamWarmThroughput(c, &sdk.UpdateStreamWarmThroughputInput{StreamName: aws.String("auto"), WarmThroughputMiBps: aws.Int32(50)})
	if err != nil || *w.WarmThroughput.TargetMiBps != 50 || *w.StreamName != "auto" {
		t.Fatalf("warm throughput: %+v %v", w, err)
	}
}

func TestChannelsNotAvailable(t *testing.T) {
	e := newEnv(t, nil)
	c := ctx(t)
	// Through the handler: the SDK wants more of the channel than the
	// server looks at before it answers.
	w := serve(e.h, "CreateChannel", contentJSON, []byte(`{"ChannelName":"ch","ServiceExecutionRoleARN":"arn:aws:iam::000000000000:role/r","StreamConfigurationList":[{"StreamARN":"`+testARN+`s"}]}`))
	if w.Code != 400 || !strings.Contains(w.Body.String(), "InvalidArgumentException") || !strings.Contains(w.Body.String(), "not available on this server") {
		t.Fatalf("CreateChannel: %d %s", w.Code, w.Body)
	}
	w = serve(e.h, "CreateChannel", contentJSON, []byte(`{}`))
	if !strings.Contains(w.Body.String(), "3 validation errors detected") {
		t.Fatalf("CreateChannel without members: %s", w.Body)
	}
	_, err := e.client.DescribeChannel(c, &sdk.DescribeChannelInput{ChannelARN: aws.String("arn:aws:kinesis:us-east-1:000000000000:channel/ch")})
	apiErr(t, err, "ResourceNotFoundException", "")
	l, err := e.client.ListChannels(c, &sdk.ListChannelsInput{})
	if err != nil || len(l.ChannelSummaries) != 0 {
		t.Fatalf("ListChannels: %v %v", l, err)
	}
	// Without a ChannelARN: AWS's validation error, not a crash.
	for _, op := range []string{"DescribeChannel", "UpdateChannel", "DeleteChannel"} {
		for ct, body := range map[string]string{contentJSON: `{}`, contentCBOR: ``} {
			w = serve(e.h, op, ct, []byte(body))
			if w.Code != 400 || !strings.Contains(w.Body.String(), "Value null at 'channelARN'") {
				t.Errorf("%s %s %q: %d %s, want 400 naming channelARN", op, ct, body, w.Code, w.Body)
			}
		}
	}
}

// A request the server cannot map to an operation is answered as AWS
// answers it; an unknown Kinesis operation is named.
func TestUnknownOperationAndHeaders(t *testing.T) {
	e := newEnv(t, nil)
	post := func(ct, target, body string) (*http.Response, map[string]any) {
		resp := e.send(target, ct, []byte(body), true)
		defer resp.Body.Close()
		var m map[string]any
		if strings.Contains(resp.Header.Get("Content-Type"), "json") {
			json.NewDecoder(resp.Body).Decode(&m)
		}
		return resp, m
	}
	resp, m := post(contentJSON, "PutResourcePolicyX", "{}")
	if resp.StatusCode != 400 || m["__type"] != excUnknownOperation || !strings.Contains(m["message"].(string), "PutResourcePolicyX") {
		t.Fatalf("unknown operation: %d %v", resp.StatusCode, m)
	}
	resp, _ = post("text/plain", "ListStreams", "{}")
	if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != contentCBOR || resp.Header.Get("X-Amzn-Errortype") != excSerialization {
		t.Fatalf("wrong content type: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = post("text/plain", "", "{}")
	if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != contentCBOR || resp.Header.Get("X-Amzn-Errortype") != excUnknownOperation {
		t.Fatalf("no target: %d %v", resp.StatusCode, resp.Header)
	}
	resp, m = post(contentJSON, "ListStreams", "")
	if resp.StatusCode != 400 || m["__type"] != excSerialization {
		t.Fatalf("empty body: %d %v", resp.StatusCode, m)
	}
	e.create("h", 1)
	resp, _ = post(contentJSON, "AddTagsToStream", `{"StreamName":"h","Tags":{"a":"b"}}`)
	if resp.StatusCode != 200 || resp.ContentLength != 0 || resp.Header.Get("X-Amzn-Requestid") == "" || len(resp.Header.Get("X-Amz-Id-2")) < 80 {
		t.Fatalf("operation without a result: %d length %d headers %v", resp.StatusCode, resp.ContentLength, resp.Header)
	}
}

func TestInjectedFaults(t *testing.T) {
	faults, err := ParseFaults("PutRecord:throttle:1,ListStreams:internal:1")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(o *Options) { o.Faults = faults })
	c := ctx(t)
	e.create("f", 1)
	fast := sdk.WithAPIOptions() // no retries beyond the test retryer's
	_, err = e.client.PutRecord(c, &sdk.PutRecordInput{StreamName: aws.String("f"), PartitionKey: aws.String("k"), Data: []byte("x")}, fast)
	apiErr(t, err, "ProvisionedThroughputExceededException", "Rate exceeded for PutRecord (injected fault, runnel serve --inject).")
	_, err = e.client.ListStreams(c, &sdk.ListStreamsInput{})
	apiErr(t, err, "InternalFailure", "Injected fault (runnel serve --inject)")
	if _, err := e.client.DescribeStreamSummary(c, &sdk.DescribeStreamSummaryInput{StreamName: aws.String("f")}); err != nil {
		t.Fatalf("an operation without a rule: %v", err)
	}
	for _, bad := range []string{"PutRecord:throttle", "Nope:throttle:0.1", "PutRecord:slow:0.1", "PutRecord:throttle:2"} {
		if _, err := ParseFaults(bad); err == nil {
			t.Errorf("ParseFaults(%q) accepted", bad)
		}
	}
}
