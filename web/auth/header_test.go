package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestParseAuthorization(t *testing.T) {
	good := "AWS4-HMAC-SHA256 Credential=AKRNAAAA/20261206/us-east-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + strings.Repeat("ab", 32)
	a, err := ParseAuthorization(good)
	if err != nil {
		t.Fatal(err)
	}
	if a.AccessKeyID != "AKRNAAAA" || a.Date != "20261206" || a.Region != "us-east-1" || a.Service != "kinesis" || a.SignedHeaders != "content-type;host;x-amz-date;x-amz-target" {
		t.Fatalf("%+v", a)
	}
	b, err := ParseAuthorization("Bearer rnl_abc")
	if err != nil || b.Scheme != SchemeBearer || b.Token != "rnl_abc" {
		t.Fatal(b, err)
	}
	for _, tc := range []struct{ in, typ string }{
		{"Bearer ", ""},
		{"Basic dXNlcjpwYXNz", ""},
		{"", ""},
		{"AWS4-HMAC-SHA256 Credential=x/20261206/r/kinesis/aws4_request, SignedHeaders=host", ExcIncompleteSignature},
		{"AWS4-HMAC-SHA256 Credential=x/2026/r/kinesis/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("0", 64), ExcIncompleteSignature},
		{"AWS4-HMAC-SHA256 Credential=x/20261206/r/kinesis, SignedHeaders=host, Signature=" + strings.Repeat("0", 64), ExcIncompleteSignature},
		{"AWS4-HMAC-SHA256 Credential=x/20261206/r/kinesis/aws4_request, SignedHeaders=Host, Signature=" + strings.Repeat("0", 64), ExcIncompleteSignature},
		{"AWS4-HMAC-SHA256 Credential=x/20261206/r/kinesis/aws4_request, SignedHeaders=host, Signature=zz", ExcIncompleteSignature},
		{"AWS4-HMAC-SHA1 Credential=x", ExcIncompleteSignature},
		{"AWS4-HMAC-SHA256 Credential=x/20261206/r/kinesis/aws4_request/extra, SignedHeaders=host, Signature=" + strings.Repeat("0", 64), ExcIncompleteSignature},
		{"AWS4-HMAC-SHA256 Credential=x/20261206/r/kinesis/aws4_request, Credential=y/20261206/r/kinesis/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("0", 64), ExcIncompleteSignature},
		{"AWS4-HMAC-SHA256 Credential=x/20261206/r/kinesis/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("0", 64) + ",Signature=" + strings.Repeat("1", 64), ExcIncompleteSignature},
	} {
		_, err := ParseAuthorization(tc.in)
		var ae *AWSError
		switch {
		case err == nil:
			t.Errorf("%q parsed", tc.in)
		case tc.typ == "" && !errors.Is(err, ErrBadCredentials):
			t.Errorf("%q: %v, want ErrBadCredentials", tc.in, err)
		case tc.typ != "" && (!errors.As(err, &ae) || ae.Type != tc.typ):
			t.Errorf("%q: %v, want %s", tc.in, err, tc.typ)
		}
	}
}

// FuzzParseAuthorization checks that any header parses or fails with one
// of the documented errors, and that what parses is consistent.
func FuzzParseAuthorization(f *testing.F) {
	f.Add("Bearer rnl_abc")
	f.Add("AWS4-HMAC-SHA256 Credential=AKRNAAAA/20261206/us-east-1/kinesis/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=" + strings.Repeat("ab", 32))
	f.Add("AWS4-HMAC-SHA256 Credential=/,,=")
	f.Add("bearer  x y")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := ParseAuthorization(h)
		if err != nil {
			var ae *AWSError
			if !errors.Is(err, ErrBadCredentials) && !(errors.As(err, &ae) && ae.Type == ExcIncompleteSignature) {
				t.Fatalf("%q: unexpected error %v", h, err)
			}
			return
		}
		switch a.Scheme {
		case SchemeBearer:
			if a.Token == "" || strings.ContainsAny(a.Token, " \t,") {
				t.Fatalf("%q: bearer token %q", h, a.Token)
			}
		case SchemeSigV4:
			if a.AccessKeyID == "" || len(a.Date) != 8 || a.Region == "" || a.Service == "" || len(a.Signature) != 64 || a.SignedHeaders == "" {
				t.Fatalf("%q: incomplete %+v", h, a)
			}
			for _, s := range strings.Split(a.SignedHeaders, ";") {
				if s == "" || s != strings.ToLower(s) {
					t.Fatalf("%q: signed header %q", h, s)
				}
			}
		default:
			t.Fatalf("%q: scheme %q", h, a.Scheme)
		}
	})
}
