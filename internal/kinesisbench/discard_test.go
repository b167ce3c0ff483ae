package kinesisbench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// The decode-and-discard server answers the AWS SDK's PutRecords and
// PutRecord as Runnel would (one result per record, distinct sequence
// numbers), and refuses a body it cannot decode.
func TestDiscardHandler(t *testing.T) {
	srv := httptest.NewServer(discardHandler())
	defer srv.Close()
	c := benchClient(srv.URL, nil)
	ctx := context.Background()
	out, err := c.PutRecords(ctx, &sdk.PutRecordsInput{StreamName: aws.String("bench"), Records: benchEntries(7, 100)})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range out.Records {
		if r.SequenceNumber == nil || len(*r.SequenceNumber) != 56 || seen[*r.SequenceNumber] {
			t.Fatalf("bad or repeated sequence number in %+v", r)
		}
		seen[*r.SequenceNumber] = true
	}
	if len(out.Records) != 7 || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("%d results, %d failed; want 7, 0", len(out.Records), aws.ToInt32(out.FailedRecordCount))
	}
	one, err := c.PutRecord(ctx, &sdk.PutRecordInput{StreamName: aws.String("bench"), PartitionKey: aws.String("k"), Data: []byte("x")})
	if err != nil || seen[aws.ToString(one.SequenceNumber)] {
		t.Fatalf("PutRecord: %v, %v", one, err)
	}
	if _, err := cannedPutRecords(3); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(`{"Records":[{"Data":1}]}`))
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.PutRecords")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a PutRecords body it cannot decode: status %d, want 400", resp.StatusCode)
	}
}
