package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/runnel-dev/runnel/internal/cpuclock"
)

const testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

// signed makes a Kinesis request signed as the Go SDK signs it.
func signed(t testing.TB, secret string, at time.Time, body []byte) *http.Request {
	r, err := http.NewRequest("POST", "http://127.0.0.1:7070/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "Kinesis_20131202.PutRecord")
	r.Header.Set("User-Agent", "aws-sdk-go-v2")
	sum := sha256.Sum256(body)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKRNTEST", SecretAccessKey: secret},
		r, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", at)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func verify(r *http.Request, body []byte, now time.Time) error {
	a, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	return VerifySigV4(context.Background(), &SigV4Request{Method: r.Method, URL: r.URL, Host: r.Host, Header: r.Header,
		ContentLength: r.ContentLength, PayloadHash: hex.EncodeToString(sum[:])}, a, testSecret, "kinesis", now)
}

func TestVerifySigV4(t *testing.T) {
	now := time.Now()
	body := []byte(`{"StreamName":"s","Data":"eA==","PartitionKey":"k"}`)
	typ := func(err error) string {
		var ae *AWSError
		if errors.As(err, &ae) {
			return ae.Type + ": " + ae.Message
		}
		if err == nil {
			return "ok"
		}
		return err.Error()
	}
	if err := verify(signed(t, testSecret, now, body), body, now); err != nil {
		t.Fatalf("good signature refused: %v", err)
	}
	for _, tc := range []struct {
		name string
		r    *http.Request
		body []byte
		now  time.Time
		want string
	}{
		{"wrong secret", signed(t, strings.Repeat("x", 40), now, body), body, now, ExcInvalidSignature + ": The request signature we calculated"},
		{"changed body", signed(t, testSecret, now, body), []byte(`{"StreamName":"other"}`), now, ExcInvalidSignature + ": The request signature"},
		{"expired", signed(t, testSecret, now.Add(-6*time.Minute), body), body, now, ExcInvalidSignature + ": Signature expired: "},
		{"future", signed(t, testSecret, now.Add(6*time.Minute), body), body, now, ExcInvalidSignature + ": Signature not yet current: "},
	} {
		if got := typ(verify(tc.r, tc.body, tc.now)); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: got %q, want %q…", tc.name, got, tc.want)
		}
	}
	// A header changed after signing is caught; one added is ignored.
	r := signed(t, testSecret, now, body)
	r.Header.Set("X-Amz-Target", "Kinesis_20131202.DeleteStream")
	if got := typ(verify(r, body, now)); !strings.HasPrefix(got, ExcInvalidSignature) {
		t.Errorf("changed target: %s", got)
	}
	r = signed(t, testSecret, now, body)
	r.Header.Set("X-Forwarded-For", "10.0.0.1")
	if err := verify(r, body, now); err != nil {
		t.Errorf("added unsigned header: %v", err)
	}
	// Within the skew window both ways is fine.
	if err := verify(signed(t, testSecret, now.Add(-4*time.Minute), body), body, now); err != nil {
		t.Errorf("4 minutes behind: %v", err)
	}
}

// BenchmarkVerifySigV4 is the CPU a PutRecord's signature check costs,
// not counting the body's SHA-256 (which depends on its size).
func BenchmarkVerifySigV4(b *testing.B) {
	now := time.Now()
	body := []byte(`{"StreamName":"s","Data":"eA==","PartitionKey":"k"}`)
	r := signed(b, testSecret, now, body)
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	req := &SigV4Request{Method: r.Method, URL: r.URL, Host: r.Host, Header: r.Header, ContentLength: r.ContentLength, PayloadHash: hash}
	h := r.Header.Get("Authorization")
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := cpuclock.Process()
	for b.Loop() {
		// As the server does: the parsed header on the stack.
		var a Authorization
		if err := a.Parse(h); err != nil {
			b.Fatal(err)
		}
		if err := VerifySigV4(ctx, req, &a, testSecret, "kinesis", now); err != nil {
			b.Fatal(err)
		}
	}
	// CPU time (with the GC it causes) rather than wall time, which a
	// shared machine stretches.
	b.ReportMetric(float64(cpuclock.Since(cpu0))/float64(b.N), "cpu-ns/op")
}

// TestSigV4SignerCache checks that the per-key signer cache keys on the
// secret too: once a key's signing key is cached, a request checked with
// another secret for the same key id (a re-created token) is still
// recomputed, and keys used in turn each verify.
func TestSigV4SignerCache(t *testing.T) {
	now := time.Now()
	body := []byte(`{}`)
	check := func(r *http.Request, secret string) error {
		a, err := ParseAuthorization(r.Header.Get("Authorization"))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		return VerifySigV4(context.Background(), &SigV4Request{Method: r.Method, URL: r.URL, Host: r.Host, Header: r.Header,
			ContentLength: r.ContentLength, PayloadHash: hex.EncodeToString(sum[:])}, a, secret, "kinesis", now)
	}
	other := strings.Repeat("o", 40)
	for i := 0; i < 3; i++ {
		if err := check(signed(t, testSecret, now, body), testSecret); err != nil {
			t.Fatalf("round %d, right secret: %v", i, err)
		}
		if err := check(signed(t, testSecret, now, body), other); err == nil {
			t.Fatalf("round %d: a request signed with one secret verified with another", i)
		}
		if err := check(signed(t, other, now, body), other); err != nil {
			t.Fatalf("round %d, second secret: %v", i, err)
		}
	}
}

// BenchmarkVerifySigV4Keys is BenchmarkVerifySigV4 with requests of two
// access keys in turn, as a server with several clients sees them.
func BenchmarkVerifySigV4Keys(b *testing.B) {
	now := time.Now()
	body := []byte(`{"StreamName":"s","Data":"eA==","PartitionKey":"k"}`)
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	type one struct {
		req    *SigV4Request
		h      string
		secret string
	}
	var reqs []one
	for i, secret := range []string{testSecret, strings.Repeat("s", 40)} {
		r, _ := http.NewRequest("POST", "http://127.0.0.1:7070/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		r.Header.Set("X-Amz-Target", "Kinesis_20131202.PutRecord")
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKRNTEST" + string(rune('A'+i)), SecretAccessKey: secret},
			r, hash, "kinesis", "us-east-1", now); err != nil {
			b.Fatal(err)
		}
		reqs = append(reqs, one{&SigV4Request{Method: r.Method, URL: r.URL, Host: r.Host, Header: r.Header, ContentLength: r.ContentLength, PayloadHash: hash},
			r.Header.Get("Authorization"), secret})
	}
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := cpuclock.Process()
	i := 0
	for b.Loop() {
		o := reqs[i%2]
		i++
		var a Authorization
		if err := a.Parse(o.h); err != nil {
			b.Fatal(err)
		}
		if err := VerifySigV4(ctx, o.req, &a, o.secret, "kinesis", now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuclock.Since(cpu0))/float64(b.N), "cpu-ns/op")
}

// parseAmzDate accepts exactly what time.Parse with the X-Amz-Date layout
// accepts, with the same time.
func TestParseAmzDate(t *testing.T) {
	for _, s := range []string{
		"20261206T102000Z", "20240229T235959Z", "20230229T000000Z", "20260431T000000Z", "20261231T240000Z",
		"20261231T236000Z", "20261231T235960Z", "20261301T000000Z", "20260001T000000Z", "20260100T000000Z",
		"2026120T102000Z", "20261206T102000", "20261206 102000Z", "2026120aT102000Z", "20261206T10200+Z",
		"-0261206T102000Z", "00010101T000000Z", "99991231T235959Z", "",
	} {
		want, werr := time.Parse(amzDateFormat, s)
		got, ok := parseAmzDate(s)
		if ok != (werr == nil) || ok && !got.Equal(want) {
			t.Errorf("parseAmzDate(%q) = %v, %v; time.Parse: %v, %v", s, got, ok, want, werr)
		}
		if ok && got.Format(amzDateFormat) != s {
			t.Errorf("parseAmzDate(%q) formats back as %q", s, got.Format(amzDateFormat))
		}
	}
}

// A client may sign headers AWS's own SDKs leave out, such as User-Agent;
// and a header may arrive under a key that is not in canonical form.
func TestVerifySigV4OtherSignedHeaders(t *testing.T) {
	now := time.Now()
	body := []byte(`{}`)
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	r, _ := http.NewRequest("POST", "http://127.0.0.1:7070/", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header["user-agent"] = []string{"some-client/1.0"} // lower case: the SDK signs it
	r.Header["x-custom_header"] = []string{"v"}          // not a canonical form
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKRNTEST", SecretAccessKey: testSecret},
		r, hash, "kinesis", "us-east-1", now); err != nil {
		t.Fatal(err)
	}
	a, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(a.SignedHeaders, "user-agent") {
		t.Fatalf("the test's request did not sign user-agent: %v", a.SignedHeaders)
	}
	// As a server receives it: User-Agent under its canonical key.
	h := r.Header.Clone()
	delete(h, "user-agent")
	h["User-Agent"] = []string{"some-client/1.0"}
	req := &SigV4Request{Method: r.Method, URL: r.URL, Host: r.Host, Header: h, ContentLength: r.ContentLength, PayloadHash: hash}
	if err := VerifySigV4(context.Background(), req, a, testSecret, "kinesis", now); err != nil {
		t.Fatalf("signed user-agent: %v", err)
	}
	h["User-Agent"] = []string{"other-client/2.0"}
	if err := VerifySigV4(context.Background(), req, a, testSecret, "kinesis", now); err == nil {
		t.Fatal("a changed signed User-Agent verified")
	}
}

// BenchmarkVerifySigV4SDKOnly is the AWS SDK's SignHTTP alone, over the
// request BenchmarkVerifySigV4 verifies as VerifySigV4 rebuilds it (its
// signed headers under lower-case names, nothing else): the floor of any
// verification that recomputes the signature with the SDK. What
// BenchmarkVerifySigV4 costs beyond it is Runnel's own part.
func BenchmarkVerifySigV4SDKOnly(b *testing.B) {
	now := time.Now()
	body := []byte(`{"StreamName":"s","Data":"eA==","PartitionKey":"k"}`)
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableSessionToken = true })
	creds := aws.Credentials{AccessKeyID: "AKRNTEST", SecretAccessKey: testSecret}
	r, _ := http.NewRequest("POST", "http://127.0.0.1:7070/", nil)
	r.ContentLength = int64(len(body))
	hd := http.Header{"X-Amz-Date": make([]string, 0, 1), "Authorization": make([]string, 0, 1),
		"content-type": {"application/x-amz-json-1.1"}, "x-amz-target": {"Kinesis_20131202.PutRecord"}}
	r.Header = hd
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := cpuclock.Process()
	for b.Loop() {
		if err := s.SignHTTP(ctx, creds, r, hash, "kinesis", "us-east-1", now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuclock.Since(cpu0))/float64(b.N), "cpu-ns/op")
}
