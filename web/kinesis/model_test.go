package kinesis

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// AWS's JSON protocol carries timestamps as epoch seconds with a
// fraction; the milliseconds a client sends must come back unchanged.
func TestEpochSecondsKeepMilliseconds(t *testing.T) {
	for _, in := range []string{"1796534059.679", "1796534059.962", "1500000000.001", "1796534059.68", "1796534059", "0.999", "-1.5"} {
		var ts awsTime
		if err := json.Unmarshal([]byte(in), &ts); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		out, _ := json.Marshal(ts)
		if string(out) != in {
			t.Errorf("timestamp %s came back as %s", in, out)
		}
	}
	ts := awsTime{time.UnixMilli(1796534059962)}
	if b, _ := json.Marshal(ts); string(b) != "1796534059.962" {
		t.Errorf("1796534059962 ms rendered as %s", b)
	}
}

func TestShardIDsNormalisedAsAWS(t *testing.T) {
	for raw, want := range map[string]string{
		"shardId-000000000001": "shardId-000000000001", "shardId-1": "shardId-000000000001", "foo-1": "shardId-000000000001",
		"1": "shardId-000000000001", "a-00002147483647": "shardId-002147483647", "-5": "shardId-000000000005",
		"2147483648": "", "shardId-002147483648": "", "ABKLFD8": "", "2.14E4": "", "foo-": "",
	} {
		got, ok := normShardID(raw)
		if want == "" && ok || want != "" && got != want {
			t.Errorf("normShardID(%q) = %q, %v; want %q", raw, got, ok, want)
		}
	}
}

func TestModelMessages(t *testing.T) {
	long := strings.Repeat("a", 129)
	for _, c := range []struct{ op, body, typ, msg string }{
		{"ListStreams", `{"Limit":"23"}`, excSerialization, "class java.lang.String can not be converted to an Integer"},
		{"CreateStream", `{"StreamName":true}`, excSerialization, "class java.lang.Boolean can not be converted to an String"},
		{"AddTagsToStream", `{"Tags":[]}`, excSerialization, "Start of list found where not expected"},
		{"PutRecord", `{"Data":"+/+="}`, excSerialization, "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected"},
		{"PutRecords", `{"Records":[23]}`, excSerialization, "Expected null"},
		{"CreateStream", `{"StreamName":"","ShardCount":0}`, excValidation, "3 validation errors detected: " +
			"Value '' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; " +
			"Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1; " +
			"Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{"CreateStream", `{"StreamName":"` + long + `","ShardCount":100000000000}`, excValidation, "2 validation errors detected: " +
			"Value '" + long + "' at 'streamName' failed to satisfy constraint: Member must have length less than or equal to 128; " +
			"Value '2147483647' at 'shardCount' failed to satisfy constraint: Member must have value less than or equal to 100000"},
		{"RemoveTagsFromStream", `{"StreamName":"s","TagKeys":["a","` + long + `"]}`, excValidation, "1 validation error detected: " +
			"Value '[a, " + long + "]' at 'tagKeys' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]"},
		{"GetShardIterator", `{"StreamName":"s","ShardId":"0","ShardIteratorType":""}`, excValidation, "1 validation error detected: " +
			"Value '' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER, TRIM_HORIZON]"},
		{"DescribeStreamSummary", `{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s"}`, "", ""},
	} {
		e := modelError(c.op, []byte(c.body), 1<<20)
		switch {
		case c.typ == "" && e != nil:
			t.Errorf("%s %s: unexpected %v", c.op, c.body, e)
		case c.typ == "":
		case e == nil:
			t.Errorf("%s %s: no error, want %s", c.op, c.body, c.typ)
		case e.Type != c.typ || e.Message != c.msg:
			t.Errorf("%s %s:\n got %s: %s\nwant %s: %s", c.op, c.body, e.Type, e.Message, c.typ, c.msg)
		}
		if e != nil && e.Type == excSerialization {
			if b := string(errorBody(codecJSON, e)); !strings.Contains(b, `"Message":`) {
				t.Errorf("SerializationException body %s: want the Message key", b)
			}
		}
	}
}

func TestAuthErrorsAsAWS(t *testing.T) {
	for _, c := range []struct{ url, auth, date, typ, msg string }{
		{"/", "", "", excMissingAuthToken, "Missing Authentication Token"},
		{"/?X-Amz-Credential=a&X-Amz-Signature=b&X-Amz-SignedHeaders=c&X-Amz-Date=d", "", "", excMissingAuthToken, "Missing Authentication Token"},
		{"/", "X", "", excIncompleteSignature, "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=X"},
		{"/", "AWS4- Signature=b, Credential=a", "a", excIncompleteSignature, "Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4- Signature=b, Credential=a"},
		{"/?X-Amz-Algorithm", "X", "", excInvalidSignature, "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."},
		{"/?X-Amz-Algorithm=a&X-Amz-Credential=b&X-Amz-Signature=c&X-Amz-Date=d", "", "", excIncompleteSignature, "AWS query-string parameters must include 'X-Amz-SignedHeaders'. Re-examine the query-string parameters."},
		{"/", "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host, Signature=c", "a", "", ""},
	} {
		req := httptest.NewRequest("POST", c.url, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		if c.date != "" {
			req.Header.Set("Date", c.date)
		}
		e := checkAuth(req)
		switch {
		case c.typ == "" && e != nil:
			t.Errorf("%s %q: unexpected %v", c.url, c.auth, e)
		case c.typ != "" && (e == nil || e.Type != c.typ || e.Message != c.msg):
			t.Errorf("%s %q:\n got %v\nwant %s: %s", c.url, c.auth, e, c.typ, c.msg)
		}
	}
}
