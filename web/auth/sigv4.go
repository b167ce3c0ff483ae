package auth

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// MaxClockSkew is how far a request's X-Amz-Date may be from the server's
// clock, as AWS allows.
const MaxClockSkew = 5 * time.Minute

// UnsignedPayload is the X-Amz-Content-Sha256 value of a request whose
// body is not part of its signature (event-stream and streamed bodies).
const UnsignedPayload = "UNSIGNED-PAYLOAD"

const amzDateFormat = "20060102T150405Z"

// Signatures are recomputed with aws-sdk-go-v2's signer. A signer caches
// one derived signing key per region and service, for the last access key
// it saw; keys of several clients would push each other out of one shared
// signer and every request would derive its key afresh (four HMACs). So
// each access key has a signer of its own, which keeps that key's derived
// key for the day (per region and service). Session tokens are not used,
// so a signer must not add one.
type keySigner struct {
	secret string
	s      *v4.Signer
}

var signers struct {
	sync.Mutex
	m map[string]*keySigner // access key id → its signer
}

// maxSigners bounds the signer cache; only keys the token store knows get
// this far, so it is only reached with that many keys in use.
const maxSigners = 4096

func signerFor(keyID, secret string) *v4.Signer {
	signers.Lock()
	defer signers.Unlock()
	if ks := signers.m[keyID]; ks != nil && ks.secret == secret {
		return ks.s
	}
	if signers.m == nil || len(signers.m) >= maxSigners {
		signers.m = map[string]*keySigner{}
	}
	ks := &keySigner{secret: secret, s: v4.NewSigner(func(o *v4.SignerOptions) { o.DisableSessionToken = true })}
	signers.m[keyID] = ks
	return ks.s
}

// verifyReq is the request rebuilt for the signer, pooled with its header
// map and URL (the signer writes the query back to the URL, so it gets a
// copy). The map keeps the two keys the signer itself writes,
// X-Amz-Date and Authorization: it appends to their slices in place, so
// they are not allocated again for every request. The headers a request
// signed are added under their lower-case names (the signer lower-cases
// them anyway, and a lower-case name is one it need not copy) and removed
// again afterwards.
type verifyReq struct {
	r     http.Request
	u     url.URL
	added []string
}

var verifyReqs = sync.Pool{New: func() any {
	return &verifyReq{r: http.Request{Header: http.Header{"X-Amz-Date": make([]string, 0, 1), "Authorization": make([]string, 0, 1)}}}
}}

// done empties vr for its next request and returns it to the pool.
func (vr *verifyReq) done() {
	hd := vr.r.Header
	for _, k := range vr.added {
		delete(hd, k)
	}
	clear(vr.added)
	vr.added = vr.added[:0]
	vr.r = http.Request{Header: hd}
	vr.u = url.URL{}
	verifyReqs.Put(vr)
}

// SigV4Request is what VerifySigV4 needs of a request.
type SigV4Request struct {
	Method string
	URL    *url.URL
	Host   string
	Header http.Header
	// ContentLength is the request's Content-Length (-1 if unknown).
	ContentLength int64
	// PayloadHash is the hex SHA-256 of the body, or the literal the
	// client sent in X-Amz-Content-Sha256 (such as UNSIGNED-PAYLOAD).
	PayloadHash string
}

// VerifySigV4 checks a request's SigV4 signature made with secret by
// recomputing it (aws-sdk-go-v2's signer over the headers the client
// signed) and comparing in constant time; and that its X-Amz-Date is
// within MaxClockSkew of now. Failures are *AWSError with AWS's types
// and texts.
//
// Where the signer's canonical form would let two requests that differ in
// what the server reads share one signature, the request is refused rather
// than verified: a request target that is not a path (the signer would
// sign "http:x/y" as the path "/y"), a query that net/url does not parse
// whole (the signer, like url.URL.Query, drops the pairs it cannot read),
// X-Amz-Date given more than once (only one is checked), and a signed
// header value that starts or ends with white space other than spaces and
// tabs (the signer trims all Unicode white space, SigV4 only spaces and
// tabs). No client signing as AWS specifies sends any of these.
func VerifySigV4(ctx context.Context, r *SigV4Request, a *Authorization, secret, service string, now time.Time) error {
	dates, _ := headerNamed(r.Header, "x-amz-date")
	if len(dates) == 0 || dates[0] == "" {
		return incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=" + r.Header.Get("Authorization"))
	}
	if len(dates) > 1 {
		return &AWSError{Type: ExcInvalidSignature, Message: "X-Amz-Date must be sent once; this request has " + strconv.Itoa(len(dates)) + "."}
	}
	amzDate := dates[0]
	if r.URL.Opaque != "" {
		return &AWSError{Type: ExcInvalidSignature, Message: "The request target must be a path or an absolute URL, not '" + r.URL.Scheme + ":" + r.URL.Opaque + "'."}
	}
	if r.URL.RawQuery != "" {
		if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
			return &AWSError{Type: ExcInvalidSignature, Message: "The query string cannot be signed as it is: " + err.Error() + "."}
		}
	}
	t, ok := parseAmzDate(amzDate)
	if !ok {
		return incomplete("Date must be in ISO-8601 'basic format'. Got '" + amzDate + "'. See http://en.wikipedia.org/wiki/ISO_8601")
	}
	now = now.UTC()
	switch {
	case t.Before(now.Add(-MaxClockSkew)):
		return &AWSError{Type: ExcInvalidSignature, Message: "Signature expired: " + amzDate + " is now earlier than " +
			now.Add(-MaxClockSkew).Format(amzDateFormat) + " (" + now.Format(amzDateFormat) + " - 5 min.)"}
	case t.After(now.Add(MaxClockSkew)):
		return &AWSError{Type: ExcInvalidSignature, Message: "Signature not yet current: " + amzDate + " is still later than " +
			now.Add(MaxClockSkew).Format(amzDateFormat) + " (" + now.Format(amzDateFormat) + " + 5 min.)"}
	}
	if a.Date != amzDate[:8] {
		return &AWSError{Type: ExcInvalidSignature, Message: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '" + a.Date + "' != '" + amzDate[:8] + "', from '" + amzDate + "'."}
	}
	if a.Service != service {
		return &AWSError{Type: ExcInvalidSignature, Message: "Credential should be scoped to correct service: '" + service + "'. "}
	}
	// Rebuild the request as the client signed it: only the headers it
	// named (the signer adds host and content-length itself, and
	// X-Amz-Date from t, which round-trips to the same text), so that
	// headers a proxy or client added after signing do not count.
	pr := verifyReqs.Get().(*verifyReq)
	defer pr.done()
	pr.u = *r.URL
	vr := &pr.r
	vr.Method, vr.URL, vr.Host = r.Method, &pr.u, r.Host
	signedHost := false
	for more, list := true, a.SignedHeaders; more; {
		var name string
		name, list, more = strings.Cut(list, ";")
		switch name {
		case "host":
			signedHost = true
		case "content-length":
			vr.ContentLength = r.ContentLength
		case "x-amz-date":
		default:
			v, ok := headerNamed(r.Header, name)
			if !ok || !trimmedAlike(v) {
				return &AWSError{Type: ExcInvalidSignature, Message: signatureMismatch}
			}
			if _, dup := vr.Header[name]; !dup {
				pr.added = append(pr.added, name)
			}
			vr.Header[name] = v
		}
	}
	if !signedHost {
		return &AWSError{Type: ExcInvalidSignature, Message: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."}
	}
	creds := aws.Credentials{AccessKeyID: a.AccessKeyID, SecretAccessKey: secret}
	if err := signerFor(a.AccessKeyID, secret).SignHTTP(ctx, creds, vr, r.PayloadHash, a.Service, a.Region, t); err != nil {
		return &AWSError{Type: ExcInvalidSignature, Message: signatureMismatch}
	}
	var got string
	if v := vr.Header["Authorization"]; len(v) == 1 {
		got = v[0]
	}
	if !signatureEqual(got, a.Signature) {
		return &AWSError{Type: ExcInvalidSignature, Message: signatureMismatch}
	}
	return nil
}

// signatureEqual says whether the Authorization value the signer wrote ends
// in the signature sig (64 hex digits), in time that depends only on the
// lengths.
func signatureEqual(authz, sig string) bool {
	const prefix = "Signature="
	if len(sig) != 64 || len(authz) < len(prefix)+64 || authz[len(authz)-64-len(prefix):len(authz)-64] != prefix {
		return false
	}
	got := authz[len(authz)-64:]
	var d byte
	for i := 0; i < 64; i++ {
		d |= got[i] ^ sig[i]
	}
	return d == 0
}

// trimmedAlike says whether the signer trims each of vals as SigV4 does:
// of spaces and tabs only (strings.TrimSpace, which the signer uses, also
// trims other white space such as U+00A0, so a value with that at an end
// would verify as the value without it).
func trimmedAlike(vals []string) bool {
	for _, v := range vals {
		if v == "" {
			continue
		}
		if first, last := v[0], v[len(v)-1]; first > ' ' && first < 0x80 && last > ' ' && last < 0x80 {
			continue
		}
		if strings.TrimSpace(v) != strings.Trim(v, " \t") {
			return false
		}
	}
	return true
}

// parseAmzDate reads an X-Amz-Date (20060102T150405Z) as time.Parse with
// amzDateFormat would, without its allocations: every field in range, so
// that the time formats back to the same text.
func parseAmzDate(s string) (time.Time, bool) {
	if len(s) != 16 || s[8] != 'T' || s[15] != 'Z' {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, d, h, mi, sec := num(0, 4), num(4, 2), num(6, 2), num(9, 2), num(11, 2), num(13, 2)
	if y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC)
	if t.Day() != d { // 31 of a 30-day month, 29 February of a common year
		return time.Time{}, false
	}
	return t, true
}

// headerNamed finds the header whose name is lower (a lower-case name)
// in any case: first under its canonical form, the key a server's request
// holds it by, then among all the keys.
func headerNamed(h http.Header, lower string) ([]string, bool) {
	var buf [64]byte
	if len(lower) <= len(buf) {
		up := true
		for i := 0; i < len(lower); i++ {
			c := lower[i]
			if up && 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			buf[i] = c
			up = c == '-'
		}
		if v, ok := h[string(buf[:len(lower)])]; ok {
			return v, true
		}
	}
	for k, v := range h {
		if len(k) == len(lower) && strings.EqualFold(k, lower) {
			return v, true
		}
	}
	return nil, false
}

const signatureMismatch = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

// UnknownAccessKey is AWS's answer to an access key id it does not know.
var UnknownAccessKey = &AWSError{Type: ExcUnrecognizedClient, Message: "The security token included in the request is invalid."}
