package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// attackReq is a Kinesis request signed with the SDK's signer for keyID
// and secret at at; edit runs before signing. payload is the hash signed
// (the body's when "").
func attackReq(t *testing.T, keyID, secret string, at time.Time, body []byte, payload string, edit func(*http.Request)) *http.Request {
	t.Helper()
	r, err := http.NewRequest("POST", "http://127.0.0.1:7070/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "Kinesis_20131202.PutRecord")
	if edit != nil {
		edit(r)
	}
	if payload == "" {
		sum := sha256.Sum256(body)
		payload = hex.EncodeToString(sum[:])
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret},
		r, payload, "kinesis", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	return r
}

// errText is an error as "Type: message", "ok" for nil.
func errText(err error) string {
	var ae *AWSError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ae):
		return ae.Type + ": " + ae.Message
	}
	return err.Error()
}

// TestSigV4Attacks checks requests an attacker could make from a signed
// one, or sign for themselves, against the token store's keys.
func TestSigV4Attacks(t *testing.T) {
	h := newSigHarness(t)
	now := time.Date(2026, 12, 6, 10, 20, 0, 0, time.UTC)
	body := []byte(`{"StreamName":"s","Data":"eA==","PartitionKey":"k"}`)
	sum := sha256.Sum256(body)
	bodyHash := hex.EncodeToString(sum[:])
	// check verifies r as the Kinesis API does: the key's secret from the
	// store, the payload hash from X-Amz-Content-Sha256 or the body.
	check := func(r *http.Request, body []byte, now time.Time) error {
		var a Authorization
		if err := a.Parse(r.Header.Get("Authorization")); err != nil {
			return err
		}
		_, secret, ok := h.store.AccessKey(a.AccessKeyID)
		if !ok {
			return UnknownAccessKey
		}
		payload := r.Header.Get("X-Amz-Content-Sha256")
		if payload != UnsignedPayload {
			sum := sha256.Sum256(body)
			payload = hex.EncodeToString(sum[:])
		}
		return VerifySigV4(context.Background(), &SigV4Request{Method: r.Method, URL: r.URL, Host: r.Host, Header: r.Header,
			ContentLength: r.ContentLength, PayloadHash: payload}, &a, secret, "kinesis", now)
	}
	setAuthz := func(r *http.Request, f func(string) string) *http.Request {
		r.Header.Set("Authorization", f(r.Header.Get("Authorization")))
		return r
	}
	const mismatch = ExcInvalidSignature + ": The request signature we calculated does not match"
	for _, tc := range []struct {
		name string
		r    *http.Request
		body []byte
		now  time.Time
		want string // prefix of errText
	}{
		{"good", attackReq(t, h.keyA, h.secA, now, body, "", nil), body, now, "ok"},
		{"signed with key B's secret, naming key A", attackReq(t, h.keyA, h.secB, now, body, "", nil), body, now, mismatch},
		{"signed by key A, Credential changed to key B",
			setAuthz(attackReq(t, h.keyA, h.secA, now, body, "", nil), func(s string) string { return strings.Replace(s, h.keyA, h.keyB, 1) }),
			body, now, mismatch},
		{"unknown key", attackReq(t, "AKRNNOTAKEY0000000000", h.secA, now, body, "", nil), body, now, ExcUnrecognizedClient},
		{"scope date is not X-Amz-Date's day",
			setAuthz(attackReq(t, h.keyA, h.secA, now, body, "", nil), func(s string) string { return strings.Replace(s, "/20261206/", "/20261205/", 1) }),
			body, now, ExcInvalidSignature + ": Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261205' != '20261206'"},
		{"X-Amz-Date moved to another day, scope kept",
			func() *http.Request {
				r := attackReq(t, h.keyA, h.secA, now, body, "", nil)
				r.Header.Set("X-Amz-Date", "20261207T000100Z")
				return r
			}(), body, time.Date(2026, 12, 7, 0, 1, 0, 0, time.UTC), ExcInvalidSignature + ": Date in Credential scope does not match"},
		{"signed a second before midnight, checked after it",
			attackReq(t, h.keyA, h.secA, time.Date(2026, 12, 6, 23, 59, 59, 0, time.UTC), body, "", nil),
			body, time.Date(2026, 12, 7, 0, 4, 0, 0, time.UTC), "ok"},
		{"SignedHeaders without host",
			setAuthz(attackReq(t, h.keyA, h.secA, now, body, "", nil), func(s string) string { return strings.Replace(s, ";host;", ";", 1) }),
			body, now, ExcInvalidSignature + ": 'Host' or ':authority' must be a 'SignedHeader'"},
		{"SignedHeaders without x-amz-target (the header then counts as unsigned)",
			setAuthz(attackReq(t, h.keyA, h.secA, now, body, "", nil), func(s string) string { return strings.Replace(s, ";x-amz-target", "", 1) }),
			body, now, mismatch},
		{"a signed header the request lacks",
			setAuthz(attackReq(t, h.keyA, h.secA, now, body, "", nil), func(s string) string { return strings.Replace(s, ";x-amz-target", ";x-amz-target;x-extra", 1) }),
			body, now, mismatch},
		{"Credential twice, the good one last",
			setAuthz(attackReq(t, h.keyA, h.secA, now, body, "", nil), func(s string) string {
				return strings.Replace(s, "AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256 Credential="+h.keyB+"/20261206/us-east-1/kinesis/aws4_request, ", 1)
			}),
			body, now, ExcIncompleteSignature + ": Authorization header has more than one 'Credential' parameter."},
		{"Signature twice, the good one first",
			setAuthz(attackReq(t, h.keyA, h.secA, now, body, "", nil), func(s string) string { return s + ", Signature=" + strings.Repeat("0", 64) }),
			body, now, ExcIncompleteSignature + ": Authorization header has more than one 'Signature' parameter."},
		{"SignedHeaders twice",
			setAuthz(attackReq(t, h.keyA, h.secA, now, body, "", nil), func(s string) string { return s + ", SignedHeaders=host;x-amz-date" }),
			body, now, ExcIncompleteSignature + ": Authorization header has more than one 'SignedHeaders' parameter."},
		{"body hash signed, sent as UNSIGNED-PAYLOAD",
			func() *http.Request {
				r := attackReq(t, h.keyA, h.secA, now, body, "", nil)
				r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
				return r
			}(), []byte(`{"StreamName":"other"}`), now, mismatch},
		{"UNSIGNED-PAYLOAD signed (the header too), as SDKs send it",
			attackReq(t, h.keyA, h.secA, now, body, UnsignedPayload, func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload) }),
			body, now, "ok"},
		{"UNSIGNED-PAYLOAD signed: another body is not part of the signature",
			attackReq(t, h.keyA, h.secA, now, body, UnsignedPayload, func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload) }),
			[]byte(`{"StreamName":"other"}`), now, "ok"},
		{"UNSIGNED-PAYLOAD signed, the header taken away",
			func() *http.Request {
				r := attackReq(t, h.keyA, h.secA, now, body, UnsignedPayload, nil)
				return r
			}(), body, now, mismatch},
		{"request target that is not a path",
			func() *http.Request {
				r := attackReq(t, h.keyA, h.secA, now, body, "", func(r *http.Request) { r.URL.Path = "/x/" })
				r.URL = &url.URL{Scheme: "http", Opaque: "evil/x/"} // the signer reads this as the path /x/
				return r
			}(), body, now, ExcInvalidSignature + ": The request target must be a path or an absolute URL, not 'http:evil/x/'."},
		{"query pair with a semicolon added",
			func() *http.Request {
				r := attackReq(t, h.keyA, h.secA, now, body, "", func(r *http.Request) { r.URL.RawQuery = "a=1" })
				r.URL.RawQuery = "a=1&b;c=2"
				return r
			}(), body, now, ExcInvalidSignature + ": The query string cannot be signed as it is: invalid semicolon separator in query."},
		{"query pair with a bad escape added",
			func() *http.Request {
				r := attackReq(t, h.keyA, h.secA, now, body, "", nil)
				r.URL.RawQuery = "b=%zz"
				return r
			}(), body, now, ExcInvalidSignature + ": The query string cannot be signed as it is: invalid URL escape"},
		{"query of more parameters than net/url parses",
			func() *http.Request {
				r := attackReq(t, h.keyA, h.secA, now, body, "", nil)
				r.URL.RawQuery = strings.Repeat("&", 10000) + "StreamName=other"
				return r
			}(), body, now, ExcInvalidSignature + ": The query string cannot be signed as it is: number of URL query parameters exceeded limit."},
		{"duplicate query keys, values reordered (SigV4 sorts them: same signature)",
			func() *http.Request {
				r := attackReq(t, h.keyA, h.secA, now, body, "", func(r *http.Request) { r.URL.RawQuery = "k=1&k=2" })
				r.URL.RawQuery = "k=2&k=1"
				return r
			}(), body, now, "ok"},
		{"X-Amz-Date twice",
			func() *http.Request {
				r := attackReq(t, h.keyA, h.secA, now, body, "", nil)
				r.Header.Add("X-Amz-Date", "20261206T102500Z")
				return r
			}(), body, now, ExcInvalidSignature + ": X-Amz-Date must be sent once; this request has 2."},
		{"signed header value given a trailing U+00A0",
			func() *http.Request {
				r := attackReq(t, h.keyA, h.secA, now, body, "", nil)
				r.Header.Set("X-Amz-Target", r.Header.Get("X-Amz-Target")+"\u00a0")
				return r
			}(), body, now, mismatch},
		{"U+00A0 inside a signed header value, signed so",
			attackReq(t, h.keyA, h.secA, now, body, "", func(r *http.Request) { r.Header.Set("X-Amz-Meta-Note", "a\u00a0b") }),
			body, now, "ok"},
		{"signed header value given another line",
			func() *http.Request {
				r := attackReq(t, h.keyA, h.secA, now, body, "", nil)
				r.Header.Add("X-Amz-Target", "Kinesis_20131202.DeleteStream")
				return r
			}(), body, now, mismatch},
		{"unsigned header with U+00A0 at its end",
			func() *http.Request {
				r := attackReq(t, h.keyA, h.secA, now, body, "", nil)
				r.Header.Set("X-Forwarded-For", "10.0.0.1\u00a0")
				return r
			}(), body, now, "ok"},
		{"bigger than any body limit: the verifier reads no body, it takes the hash",
			attackReq(t, h.keyA, h.secA, now, nil, bodyHash, func(r *http.Request) { r.ContentLength = 1 << 40 }),
			body, now, "ok"},
	} {
		if got := errText(check(tc.r, tc.body, tc.now)); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: got %q, want %q…", tc.name, got, tc.want)
		}
	}
}

// TestSigV4ClockSkew checks both edges of MaxClockSkew with the clock
// VerifySigV4 is given: a signature made exactly MaxClockSkew before or
// after the server's now verifies, a second more does not.
func TestSigV4ClockSkew(t *testing.T) {
	h := newSigHarness(t)
	signedAt := time.Date(2026, 12, 6, 10, 20, 0, 0, time.UTC)
	body := []byte(`{}`)
	r := attackReq(t, h.keyA, h.secA, signedAt, body, "", nil)
	var a Authorization
	if err := a.Parse(r.Header.Get("Authorization")); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	req := &SigV4Request{Method: r.Method, URL: r.URL, Host: r.Host, Header: r.Header, ContentLength: r.ContentLength, PayloadHash: hex.EncodeToString(sum[:])}
	for _, tc := range []struct {
		now  time.Duration // server's clock minus the signing time
		want string
	}{
		{0, "ok"},
		{MaxClockSkew, "ok"},
		{MaxClockSkew + 999*time.Millisecond, ExcInvalidSignature + ": Signature expired: 20261206T102000Z is now earlier than 20261206T102000Z (20261206T102500Z - 5 min.)"},
		{MaxClockSkew + time.Second, ExcInvalidSignature + ": Signature expired: 20261206T102000Z is now earlier than 20261206T102001Z (20261206T102501Z - 5 min.)"},
		{-MaxClockSkew, "ok"},
		{-MaxClockSkew - time.Second, ExcInvalidSignature + ": Signature not yet current: 20261206T102000Z is still later than 20261206T101959Z (20261206T101459Z + 5 min.)"},
	} {
		if got := errText(VerifySigV4(context.Background(), req, &a, h.secA, "kinesis", signedAt.Add(tc.now))); got != tc.want {
			t.Errorf("server clock %v from the signature: got %q, want %q", tc.now, got, tc.want)
		}
	}
}

// TestSignatureEqual checks the comparison: equal only when the signer's
// Authorization value ends in "Signature=" and exactly sig, whatever byte
// differs. It runs over every byte whatever the input (no early exit), so
// its time depends on the lengths only; BenchmarkSignatureEqual shows it.
func TestSignatureEqual(t *testing.T) {
	sig := strings.Repeat("0123456789abcdef", 4)
	authz := "AWS4-HMAC-SHA256 Credential=K/20261206/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig
	if !signatureEqual(authz, sig) {
		t.Fatal("equal signature refused")
	}
	for i := 0; i < len(sig); i++ {
		b := []byte(sig)
		b[i] ^= 1
		if signatureEqual(authz, string(b)) {
			t.Fatalf("signature differing at byte %d accepted", i)
		}
	}
	for _, bad := range []struct{ authz, sig string }{
		{authz, sig[:63]},
		{authz, sig + "0"},
		{authz[:len(authz)-1], sig},
		{strings.Replace(authz, "Signature=", "Signature:", 1), sig},
		{sig, sig},
		{"", ""},
	} {
		if signatureEqual(bad.authz, bad.sig) {
			t.Errorf("signatureEqual(%q, %q) = true", bad.authz, bad.sig)
		}
	}
}

// BenchmarkSignatureEqual compares a signature differing in its first
// byte, in its last byte, and an equal one: the times should not differ.
func BenchmarkSignatureEqual(b *testing.B) {
	sig := strings.Repeat("0123456789abcdef", 4)
	authz := "AWS4-HMAC-SHA256 Credential=K/20261206/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig
	for _, c := range []struct{ name, sig string }{
		{"first", "f" + sig[1:]},
		{"last", sig[:63] + "f"},
		{"equal", sig},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				signatureEqual(authz, c.sig)
			}
		})
	}
}
