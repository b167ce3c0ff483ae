package kinesis

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestPolicyEvaluate checks the policy language Runnel evaluates: Principal
// forms, Action and Resource wildcards (case-insensitive actions, * across
// slashes), the Not- elements, explicit Deny over Allow, and that a
// conditional statement never widens access.
func TestPolicyEvaluate(t *testing.T) {
	const (
		acct   = "000000000000"
		alice  = "arn:aws:iam::000000000000:user/alice"
		bob    = "arn:aws:iam::000000000000:user/bob"
		stream = "arn:aws:kinesis:us-east-1:000000000000:stream/s1"
		cons   = "arn:aws:kinesis:us-east-1:000000000000:stream/s1/consumer/c:1700000000"
	)
	for _, tc := range []struct {
		policy              string
		who, action, target string
		want                decision
	}{
		{`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kinesis:*","Resource":"*"}]}`, alice, "kinesis:PutRecords", stream, allowed},
		{`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"000000000000"},"Action":"kinesis:Put*","Resource":"*"}]}`, bob, "kinesis:PutRecord", stream, allowed},
		{`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"KINESIS:putrecords","Resource":"*"}]}`, bob, "kinesis:PutRecords", stream, allowed},
		{`{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kinesis:*","Resource":"*"}]}`, bob, "kinesis:PutRecords", stream, noDecision},
		{`{"Statement":[{"Effect":"Allow","Principal":{"AWS":["` + alice + `"]},"Action":"kinesis:*","Resource":"*"}]}`, bob, "kinesis:PutRecords", stream, noDecision},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kinesis:Get?ecords","Resource":"*"}]}`, bob, "kinesis:GetRecords", stream, allowed},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kinesis:Get*","Resource":"` + stream + `"}]}`, bob, "kinesis:GetRecords", cons, noDecision},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kinesis:*","Resource":"arn:aws:kinesis:*:*:stream/s1/*"}]}`, bob, "kinesis:SubscribeToShard", cons, allowed},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","NotAction":"kinesis:Delete*","Resource":"*"}]}`, bob, "kinesis:DeleteStream", stream, noDecision},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","NotResource":"` + stream + `"}]}`, bob, "kinesis:DeleteStream", stream, noDecision},
		{`{"Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"` + alice + `"},"Action":"*","Resource":"*"}]}`, bob, "kinesis:ListShards", stream, denied},
		{`{"Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"` + alice + `"},"Action":"*","Resource":"*"}]}`, alice, "kinesis:ListShards", stream, noDecision},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"},{"Effect":"Deny","Principal":{"AWS":"` + bob + `"},"Action":"kinesis:PutRecords","Resource":"*"}]}`, bob, "kinesis:PutRecords", stream, denied},
		{`{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}}`, bob, "kinesis:PutRecords", stream, noDecision},
		{`{"Statement":{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}}`, bob, "kinesis:PutRecords", stream, denied},
		{`{"Statement":[]}`, bob, "kinesis:PutRecords", stream, noDecision},
	} {
		doc, err := parsePolicy(tc.policy, false)
		if err != nil {
			t.Errorf("%s: %v", tc.policy, err)
			continue
		}
		if got := doc.evaluate(tc.who, acct, tc.action, tc.target); got != tc.want {
			t.Errorf("%s\n  %s %s on %s: got %d, want %d", tc.policy, tc.who, tc.action, tc.target, got, tc.want)
		}
	}
}

// TestPolicyRefused checks that PutResourcePolicy's parse names what is
// wrong with a policy it cannot enforce.
func TestPolicyRefused(t *testing.T) {
	for _, tc := range []struct{ policy, want string }{
		{`{not json`, "Policy is not a JSON document."},
		{`[]`, "Policy is not a JSON object"},
		{`{"Version":"2012-10-17"}`, "Policy Statement: "},
		{`{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"*","Resource":"*"}]}`, `Policy Statement 1: Effect must be Allow or Deny, not "Maybe"`},
		{`{"Statement":[{"Sid":"x","Effect":"Allow","Action":"*","Resource":"*"}]}`, "Policy Statement 1 (x): needs exactly one of Principal and NotPrincipal"},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","Resource":"*"}]}`, "Policy Statement 1: needs exactly one of Action and NotAction"},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*"}]}`, "Policy Statement 1: needs exactly one of Resource and NotResource"},
		{`{"Statement":[{"Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"*","Resource":"*"}]}`, `principal type "Service" is not one Runnel knows`},
		{`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}`, "Policy Statement 1: Condition is not supported"},
	} {
		_, err := parsePolicy(tc.policy, true)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want …%s…", tc.policy, err, tc.want)
		}
	}
}

// TestPolicyGoesWithItsResource deregisters a consumer that has a resource
// policy and registers one of the same name, and deletes and creates
// again a stream with a policy: the new resources (new ARNs on AWS, where
// a consumer's ARN carries its creation time) have no policy.
func TestPolicyGoesWithItsResource(t *testing.T) {
	servedEnv(t)
	fx := newServed(t, servedSetup{})
	defer fx.close()
	do := func(op, body string) []byte {
		t.Helper()
		w := fx.call(t, op, false, false, []byte(body))
		if w.Code != http.StatusOK {
			t.Fatalf("%s %s: %d %s", op, body, w.Code, w.Body.Bytes())
		}
		fx.settle()
		return w.Body.Bytes()
	}
	do("PutResourcePolicy", `{"ResourceARN":"$C","Policy":"{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"kinesis:*\",\"Resource\":\"*\"}]}"}`)
	do("DeregisterStreamConsumer", `{"ConsumerARN":"$C"}`)
	var out struct{ Consumer struct{ ConsumerARN string } }
	if err := json.Unmarshal(do("RegisterStreamConsumer", `{"StreamARN":"$F","ConsumerName":"c"}`), &out); err != nil {
		t.Fatal(err)
	}
	if got := string(do("GetResourcePolicy", `{"ResourceARN":"`+out.Consumer.ConsumerARN+`"}`)); got != `{"Policy":"{}"}` {
		t.Errorf("the new consumer c has the policy of the one deregistered: %s", got)
	}
	if got := string(do("GetResourcePolicy", `{"ResourceARN":"$F"}`)); got == `{"Policy":"{}"}` {
		t.Fatalf("stream f has no policy: %s", got)
	}
	do("DeleteChannel", `{"ChannelARN":"$H"}`) // a stream that channels read is not deleted
	do("DeleteStream", `{"StreamName":"f","EnforceConsumerDeletion":true}`)
	do("CreateStream", `{"StreamName":"f","ShardCount":1}`)
	if got := string(do("GetResourcePolicy", `{"ResourceARN":"$F"}`)); got != `{"Policy":"{}"}` {
		t.Errorf("the new stream f has the policy of the one deleted: %s", got)
	}
}
