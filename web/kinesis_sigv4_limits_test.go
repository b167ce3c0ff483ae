package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/runnel-dev/runnel/web/auth"
)

// endless is a body of zeros that never ends and counts what was read.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	clear(p)
	e.n += int64(len(p))
	return len(p), nil
}

// TestKinesisSigV4BodyBounded checks what a signed request with an endless
// body costs: whether the body is hashed for the signature (a declared
// hash) or not (UNSIGNED-PAYLOAD, the handler then reads it), at most
// kinesisMaxBody and a read's worth more is read, and the answer is AWS's
// SerializationException. VerifySigV4 itself reads no body: it is given
// the payload hash.
func TestKinesisSigV4BodyBounded(t *testing.T) {
	e := newAuthEnv(t, Security{Auth: true})
	w := e.tokens["writer"]
	for _, payload := range []string{strings.Repeat("0", 64), auth.UnsignedPayload} {
		body := &endless{}
		req := httptest.NewRequest("POST", "http://127.0.0.1:7070/", body)
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.PutRecord")
		req.Header.Set("X-Amz-Content-Sha256", payload)
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: w.AccessKeyID, SecretAccessKey: w.SecretAccessKey},
			req, payload, "kinesis", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		if et := rec.Header().Get("X-Amzn-Errortype"); rec.Code != 400 || !strings.HasPrefix(et, "SerializationException") {
			t.Errorf("%s: %d %s %s, want 400 SerializationException", payload, rec.Code, et, rec.Body)
		}
		t.Logf("%s: read %d bytes", payload, body.n)
		if body.n > kinesisMaxBody+1<<20 {
			t.Errorf("%s: read %d bytes of the body, limit %d", payload, body.n, kinesisMaxBody)
		}
	}
}

// TestKinesisPresignedRefused checks that query-string (presigned) SigV4,
// which the Kinesis API does not take, is refused with a message saying so
// when auth is on, even with a presigned URL the SDK made correctly.
func TestKinesisPresignedRefused(t *testing.T) {
	e := newAuthEnv(t, Security{Auth: true})
	w := e.tokens["writer"]
	req, _ := http.NewRequest("POST", e.ts.URL+"/", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
	u, hdr, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: w.AccessKeyID, SecretAccessKey: w.SecretAccessKey},
		req, "UNSIGNED-PAYLOAD", "kinesis", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pre, _ := http.NewRequest("POST", u, strings.NewReader("{}"))
	pre.Header = hdr
	resp, err := http.DefaultClient.Do(pre)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if et := resp.Header.Get("X-Amzn-Errortype"); resp.StatusCode != 400 || et != auth.ExcIncompleteSignature ||
		!strings.Contains(string(b), "Query-string (presigned) authentication is not supported") {
		t.Errorf("presigned: %d %s %s", resp.StatusCode, et, b)
	}
}
