package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"golang.org/x/net/http/httpguts"
)

// The fuzz harness plays a client and a server. The client builds a request
// from the fuzz input, signs it with aws-sdk-go-v2's signer (the oracle)
// and writes it out as HTTP/1.1 bytes; the server reads those bytes as
// net/http's server does and checks the signature as the Kinesis API does
// (store lookup, X-Amz-Content-Sha256, VerifySigV4). Then one mutation of
// the bytes is applied and checked the same way. The property: the
// unmutated request verifies (or is refused for a documented reason), and
// a mutated request that verifies means to the server what the original
// meant in every signed part, as SigV4 defines that (method, path, query,
// host, the signed headers' values, X-Amz-Date, body or its declared hash,
// the credential scope and key). A mutation that only renames a header's
// case, folds a header line or adds an unsigned header must still verify.

// sigT0 is when the fuzz harness's client signs.
var sigT0 = time.Date(2026, 12, 6, 10, 20, 0, 0, time.UTC)

// sigHarness is a token store with two AWS keys.
type sigHarness struct {
	store      *Store
	keyA, keyB string
	secA, secB string
}

func newSigHarness(t testing.TB) *sigHarness {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Create("fuzz-a", Writer, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Create("fuzz-b", Writer, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	return &sigHarness{store: s, keyA: a.AccessKeyID, keyB: b.AccessKeyID, secA: a.SecretAccessKey, secB: b.SecretAccessKey}
}

// wireReq is a request as a client writes it: header lines in order, each
// name spelled as sent.
type wireReq struct {
	method, target string
	lines          [][2]string
	chunked        bool
	body           []byte
}

func (w *wireReq) bytes() []byte {
	var b bytes.Buffer
	b.WriteString(w.method + " " + w.target + " HTTP/1.1\r\n")
	for _, l := range w.lines {
		b.WriteString(l[0] + ": " + l[1] + "\r\n")
	}
	if w.chunked {
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		if len(w.body) > 0 {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(w.body), w.body)
		}
		b.WriteString("0\r\n\r\n")
	} else {
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(w.body), w.body)
	}
	return b.Bytes()
}

// line returns the index of the first line named name (any case), or -1.
func (w *wireReq) line(name string) int {
	for i, l := range w.lines {
		if strings.EqualFold(l[0], name) {
			return i
		}
	}
	return -1
}

// readServerRequest reads a request as net/http's server does: ReadRequest
// and the checks the server adds to it (one valid Host, valid header names
// and values), then the body. ok is false where the server answers 400.
func readServerRequest(b []byte) (r *http.Request, body []byte, ok bool) {
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
	if err != nil {
		return nil, nil, false
	}
	// ReadRequest has taken the Host line out (refusing two), into r.Host
	// unless the target is an absolute URL.
	if r.Host == "" || !httpguts.ValidHostHeader(r.Host) {
		return nil, nil, false
	}
	for k, vv := range r.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return nil, nil, false
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, nil, false
			}
		}
	}
	if body, err = io.ReadAll(r.Body); err != nil {
		return nil, nil, false
	}
	return r, body, true
}

// verified is what the server made of a request it checked.
type verified struct {
	a       Authorization
	payload string // the payload hash the signature was checked with
	cl      int64
	err     error
}

// check authenticates r as the Kinesis API does with the store's keys.
func (h *sigHarness) check(r *http.Request, body []byte, now time.Time) verified {
	var v verified
	if err := v.a.Parse(r.Header.Get("Authorization")); err != nil {
		v.err = err
		return v
	}
	if v.a.Scheme != SchemeSigV4 {
		v.err = errors.New("not SigV4")
		return v
	}
	_, secret, ok := h.store.AccessKey(v.a.AccessKeyID)
	if !ok {
		v.err = UnknownAccessKey
		return v
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	v.payload = payload
	if payload != UnsignedPayload {
		sum := sha256.Sum256(body)
		hx := hex.EncodeToString(sum[:])
		if payload != "" && payload != hx {
			v.err = errors.New("x-amz-content-sha256 does not match the body")
			return v
		}
		v.payload = hx
	}
	v.cl = r.ContentLength
	if v.cl < 0 && len(body) > 0 {
		v.cl = int64(len(body))
	}
	v.err = VerifySigV4(context.Background(), &SigV4Request{Method: r.Method, URL: r.URL, Host: r.Host, Header: r.Header,
		ContentLength: v.cl, PayloadHash: v.payload}, &v.a, secret, "kinesis", now)
	return v
}

// signedHeaderValue is a signed header's value as SigV4 defines it: the
// values of every line of that name in order, each trimmed of spaces and
// tabs with runs of spaces made one, joined by commas.
func signedHeaderValue(h http.Header, lower string) (string, bool) {
	var vals []string
	for k, vv := range h {
		if strings.EqualFold(k, lower) {
			for _, v := range vv {
				v = strings.Trim(v, " \t")
				for strings.Contains(v, "  ") {
					v = strings.ReplaceAll(v, "  ", " ")
				}
				vals = append(vals, v)
			}
		}
	}
	return strings.Join(vals, ","), vals != nil
}

// sameQuery says whether two raw queries hold the same parameters (each
// key's values compared as a set in order of value, as SigV4 sorts them),
// both parsing without error.
func sameQuery(a, b string) bool {
	qa, ea := url.ParseQuery(a)
	qb, eb := url.ParseQuery(b)
	if ea != nil || eb != nil || len(qa) != len(qb) {
		return false
	}
	for k, va := range qa {
		vb := qb[k]
		va, vb = slices.Clone(va), slices.Clone(vb)
		slices.Sort(va)
		slices.Sort(vb)
		if !slices.Equal(va, vb) {
			return false
		}
	}
	return true
}

// signedHost is the host a request names, without the default port of
// its URL's scheme (an absolute-form target "http://h:80/" names h).
func signedHost(r *http.Request) string {
	if r.URL.Scheme == "http" {
		return strings.TrimSuffix(r.Host, ":80")
	}
	if r.URL.Scheme == "https" {
		return strings.TrimSuffix(r.Host, ":443")
	}
	return r.Host
}

// signedDiff says how the server's view of m differs from o's in a part
// either request's signature covers; "" if in none.
func signedDiff(o, m *http.Request, vo, vm *verified) string {
	switch {
	case o.Method != m.Method:
		return "method"
	case o.URL.EscapedPath() != m.URL.EscapedPath() || o.URL.Opaque != m.URL.Opaque:
		return "path"
	case !sameQuery(o.URL.RawQuery, m.URL.RawQuery):
		return "query"
	case signedHost(o) != signedHost(m):
		return "host"
	case !slices.Equal(o.Header.Values("X-Amz-Date"), m.Header.Values("X-Amz-Date")):
		return "x-amz-date"
	case vo.payload != vm.payload:
		return "payload"
	case vo.a.AccessKeyID != vm.a.AccessKeyID || vo.a.Date != vm.a.Date || vo.a.Region != vm.a.Region || vo.a.Service != vm.a.Service:
		return "credential scope"
	}
	names := strings.Split(vo.a.SignedHeaders+";"+vm.a.SignedHeaders, ";")
	for _, n := range names {
		switch n {
		case "host", "x-amz-date":
			continue
		case "content-length":
			if vo.cl != vm.cl {
				return "content-length"
			}
			continue
		}
		ov, oOK := signedHeaderValue(o.Header, n)
		mv, mOK := signedHeaderValue(m.Header, n)
		if ov != mv || oOK != mOK {
			return "signed header " + n
		}
	}
	return ""
}

// tokenOnly keeps the bytes of s that may be in a method or header name.
func tokenOnly(s string, max int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < max; i++ {
		if httpguts.IsTokenRune(rune(s[i])) {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// valueOnly keeps the bytes of s a client may send in a header value (no
// controls but tab).
func valueOnly(s string, max int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < max; i++ {
		if c := s[i]; c >= ' ' && c != 0x7f || c == '\t' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// clientSpecial are header names the fuzz client does not set itself: the
// transport or the signer owns them, or they change the framing.
var clientSpecial = map[string]bool{"host": true, "content-length": true, "transfer-encoding": true, "connection": true,
	"te": true, "trailer": true, "upgrade": true, "expect": true, "keep-alive": true, "proxy-connection": true,
	"authorization": true, "x-amz-date": true, "x-amz-content-sha256": true, "x-amz-security-token": true}

var fuzzHosts = []string{"127.0.0.1:7070", "kinesis.us-east-1.amazonaws.com", "localhost:80", "[::1]:7070"}

// sigClient builds and signs the fuzz input's request. ok is false when
// no client could send it.
func (h *sigHarness) sigClient(method, target, headers string, body []byte, mode uint8) (w *wireReq, ok bool) {
	if method = tokenOnly(method, 16); method == "" {
		method = "POST"
	}
	if !strings.HasPrefix(target, "/") {
		target = "/" + target
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c == 0x7f {
			return nil, false
		}
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, false
	}
	u.Scheme, u.Host = "http", fuzzHosts[mode&3]
	if len(body) > 4096 {
		body = body[:4096]
	}
	w = &wireReq{method: method, target: target, body: body, chunked: mode&4 != 0}
	req := &http.Request{Method: method, URL: u, Host: u.Host, Header: http.Header{}, ContentLength: int64(len(body))}
	if w.chunked {
		req.ContentLength = -1
	}
	add := func(name, value string) {
		w.lines = append(w.lines, [2]string{name, value})
		for k := range req.Header {
			if strings.EqualFold(k, name) {
				req.Header[k] = append(req.Header[k], value)
				return
			}
		}
		req.Header[name] = []string{value}
	}
	add("Content-Type", "application/x-amz-json-1.1")
	add("X-Amz-Target", "Kinesis_20131202.PutRecord")
	add("User-Agent", "fuzz/1.0") // under this key the SDK does not sign it
	for i, l := range strings.Split(headers, "\n") {
		if i == 16 || headers == "" {
			break
		}
		name, value, _ := strings.Cut(l, ":")
		if name = tokenOnly(name, 32); name == "" {
			continue
		}
		if clientSpecial[strings.ToLower(name)] {
			name = "x-" + name
		}
		add(name, valueOnly(value, 128))
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	switch mode >> 3 & 3 {
	case 1:
		add("X-Amz-Content-Sha256", payload)
	case 2:
		payload = UnsignedPayload
		add("X-Amz-Content-Sha256", payload)
	}
	region := []string{"us-east-1", "eu-west-1"}[mode>>5&1]
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: h.keyA, SecretAccessKey: h.secA},
		req, payload, "kinesis", region, sigT0)
	if err != nil {
		return nil, false
	}
	host := req.Host // the signer drops a default port, and the client sends what it signed
	w.lines = append([][2]string{{"Host", host}}, w.lines...)
	w.lines = append(w.lines, [2]string{"X-Amz-Date", req.Header.Get("X-Amz-Date")}, [2]string{"Authorization", req.Header.Get("Authorization")})
	return w, true
}

// originalRefusal says why the server may refuse the unmutated request,
// "" if it must verify it: what VerifySigV4 documents it refuses although
// a client signed it.
func originalRefusal(r *http.Request, v *verified, now time.Time) string {
	if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
		return "query " + err.Error()
	}
	if d := now.Sub(sigT0); d > MaxClockSkew || d < -MaxClockSkew {
		return "clock skew"
	}
	for _, n := range strings.Split(v.a.SignedHeaders, ";") {
		for _, hv := range r.Header.Values(n) {
			if strings.TrimSpace(hv) != strings.Trim(hv, " \t") {
				return "signed header " + n + " with white space other than spaces and tabs at an end"
			}
		}
	}
	return ""
}

// mutation kinds; mustVerify marks those that change nothing signed.
const (
	mutNone = iota
	mutMethod
	mutTarget
	mutQuery
	mutHeaderValue
	mutAddHeader
	mutDropHeader
	mutBody
	mutShiftDate
	mutSecondDate
	mutOtherKey
	mutScope
	mutSignature
	mutSignedHeaders
	mutDupParam
	mutHost
	mutInsertBytes
	mutDeleteBytes
	mutNameCase
	mutFold
	mutSignedByOther
	mutKinds
)

var mutNames = [...]string{"none", "method", "target", "query", "header value", "add header", "drop header", "body",
	"shift date", "second date", "other key", "scope", "signature", "signed headers", "duplicate parameter", "host",
	"insert bytes", "delete bytes", "name case", "fold", "signed by other key"}

// What a mutation's result must do beyond the property.
const (
	expectAny = iota
	expectVerified
	expectRefused
)

// mutate applies mutation kind to w (whose Authorization line is its last)
// and returns the bytes to send, and whether the result must verify or be
// refused whatever it means.
func (h *sigHarness) mutate(w *wireReq, kind uint8, arg string, pos uint16) (out []byte, expect int) {
	authz := &w.lines[len(w.lines)-1][1]
	ip := int(pos)
	pick := func(n int) int { return ip % n }
	switch kind % mutKinds {
	case mutMethod:
		m := tokenOnly(arg, 16)
		if m == w.method || m == "" {
			m = w.method + "X"
		}
		w.method = m
	case mutTarget:
		w.target = arg
	case mutQuery:
		if strings.Contains(w.target, "?") {
			w.target += "&" + arg
		} else {
			w.target += "?" + arg
		}
	case mutHeaderValue:
		i := pick(len(w.lines) - 1)
		if pos&0x8000 != 0 {
			w.lines[i][1] = arg + w.lines[i][1]
		} else {
			w.lines[i][1] += arg
		}
	case mutAddHeader:
		name, value, _ := strings.Cut(arg, ":")
		name = tokenOnly(name, 32)
		if name == "" {
			name = "X-Forwarded-For"
		}
		value = strings.Trim(valueOnly(value, 64), " \t")
		w.lines = slices.Insert(w.lines, pick(len(w.lines)+1), [2]string{name, value})
		var a Authorization
		lower := strings.ToLower(name)
		if a.Parse(*authz) == nil && !slices.Contains(strings.Split(a.SignedHeaders, ";"), lower) &&
			strings.HasPrefix(lower, "x-") && !clientSpecial[lower] {
			expect = expectVerified
		}
	case mutDropHeader:
		i := pick(len(w.lines) - 1)
		w.lines = slices.Delete(w.lines, i, i+1)
	case mutBody:
		if len(w.body) > 0 && arg == "" {
			w.body = slices.Clone(w.body)
			w.body[pick(len(w.body))] ^= 1
		} else {
			w.body = append(slices.Clone(w.body), arg...)
		}
	case mutShiftDate:
		i := w.line("X-Amz-Date")
		d := time.Duration(ip%601-300) * time.Second
		if d == 0 {
			d = time.Second
		}
		w.lines[i][1] = sigT0.Add(d).Format(amzDateFormat)
	case mutSecondDate:
		v := sigT0.Format(amzDateFormat)
		if arg != "" {
			v = valueOnly(arg, 32)
		}
		w.lines = append(w.lines[:len(w.lines)-1:len(w.lines)-1], [2]string{"X-Amz-Date", v}, w.lines[len(w.lines)-1])
	case mutOtherKey:
		other := h.keyB
		if pos&1 != 0 {
			other = "AKRNNOTAKEY0000000000"
		}
		*authz = strings.Replace(*authz, "Credential="+h.keyA+"/", "Credential="+other+"/", 1)
	case mutScope:
		scope := strings.Split(*authz, "/")
		if len(scope) > 4 {
			j := 1 + pick(3) // date, region or service
			repl := tokenOnly(arg, 16)
			if j == 1 {
				repl = sigT0.AddDate(0, 0, 1+ip%3).Format("20060102")
			}
			if repl == "" || repl == scope[j] {
				repl = scope[j] + "x"
			}
			scope[j] = repl
			*authz = strings.Join(scope, "/")
		}
	case mutSignature:
		i := strings.LastIndex(*authz, "Signature=") + len("Signature=") + pick(64)
		if i < len(*authz) {
			c := "0123456789abcdef"[(strings.IndexByte("0123456789abcdef", (*authz)[i])+1+ip/64%15)%16]
			*authz = (*authz)[:i] + string(c) + (*authz)[i+1:]
		}
	case mutSignedHeaders:
		start := strings.Index(*authz, "SignedHeaders=") + len("SignedHeaders=")
		end := start + strings.IndexByte((*authz)[start:], ',')
		names := strings.Split((*authz)[start:end], ";")
		if pos&1 != 0 || len(names) == 1 {
			names = append(names, strings.ToLower(tokenOnly(arg, 32)))
			slices.Sort(names)
		} else {
			names = slices.Delete(names, pick(len(names)), pick(len(names))+1)
		}
		*authz = (*authz)[:start] + strings.Join(names, ";") + (*authz)[end:]
	case mutDupParam:
		p := []string{"Credential=" + h.keyB + "/" + sigT0.Format("20060102") + "/us-east-1/kinesis/aws4_request",
			"SignedHeaders=host;x-amz-date", "Signature=" + strings.Repeat("0", 64)}[pick(3)]
		if pos&0x8000 != 0 {
			*authz = strings.Replace(*authz, " ", " "+p+", ", 1)
		} else {
			*authz += ", " + p
		}
		expect = expectRefused // one value of each parameter, whichever is the good one
	case mutHost:
		w.lines[0][1] = arg
	case mutNameCase:
		i := pick(len(w.lines))
		n := []byte(w.lines[i][0])
		for j := range n {
			if c := n[j]; 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
				n[j] ^= 0x20
			}
		}
		w.lines[i][0] = string(n)
		expect = expectVerified
	case mutFold:
		i := pick(len(w.lines) - 1)
		if j := strings.IndexByte(w.lines[i][1], ' '); j > 0 {
			w.lines[i][1] = w.lines[i][1][:j] + "\r\n" + w.lines[i][1][j:]
			expect = expectVerified
		}
	case mutSignedByOther:
		// The same request signed with key B's secret, sent under key A.
		*authz = resignAs(*authz, w, h)
	}
	out = w.bytes()
	switch kind % mutKinds {
	case mutInsertBytes:
		i := pick(len(out) + 1)
		out = slices.Insert(out, i, []byte(arg)...)
	case mutDeleteBytes:
		i := pick(len(out))
		out = slices.Delete(out, i, min(len(out), i+1+len(arg)%8))
	}
	return out, expect
}

// resignAs returns the Authorization value of w's request as its server
// reads it, signed with key B's secret but naming key A.
func resignAs(authz string, w *wireReq, h *sigHarness) string {
	r, body, ok := readServerRequest(w.bytes())
	if !ok {
		return authz
	}
	var a Authorization
	if a.Parse(authz) != nil {
		return authz
	}
	v := h.check(r, body, sigT0)
	c := r.Clone(context.Background())
	c.URL.Scheme = "http"
	c.Header = http.Header{}
	for _, n := range strings.Split(a.SignedHeaders, ";") {
		if n != "host" && n != "content-length" {
			c.Header[n] = r.Header.Values(n)
		}
	}
	c.ContentLength = v.cl
	if !strings.Contains(a.SignedHeaders, "content-length") {
		c.ContentLength = 0
	}
	if v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: h.keyA, SecretAccessKey: h.secB},
		c, v.payload, "kinesis", a.Region, sigT0) != nil {
		return authz
	}
	return c.Header.Get("Authorization")
}

// FuzzVerifySigV4 checks VerifySigV4 against aws-sdk-go-v2's signer over
// requests built from the input (see the harness above): a signed request
// verifies, a mutation of a signed part is refused, one of an unsigned
// part is not, nothing panics.
func FuzzVerifySigV4(f *testing.F) {
	h := newSigHarness(f)
	// Inputs that found bugs are in testdata/fuzz/FuzzVerifySigV4.
	hdrs := "X-Amz-Meta-A: one\nx-amz-meta-a:  two   words \nUser-Agent: lower\nX-Custom_header: v"
	for _, s := range []struct {
		method, target, headers string
		body                    string
		mode, mut               uint8
		arg                     string
		pos                     uint16
	}{
		{"POST", "/", "", `{"StreamName":"s"}`, 0x40, mutNone, "", 0},
		{"POST", "/a/../b//c/%2e/%2F?k=2&k=1&e=&x=%3D%26", hdrs, "body", 0x41, mutQuery, "k=3", 0},
		{"GET", "/p%41th", "user-agent: c\nX-A: a\nx-a: b", "", 0x4c, mutHeaderValue, "x", 3},
		{"POST", "/", "X-Folded: a b  c", "{}", 0x52, mutFold, "", 4},
		{"POST", "/", "", "{}", 0x42, mutTarget, "http://localhost:80/", 0},
		{"POST", "/", "", "{}", 0x40, mutTarget, "http://127.0.0.1:7070/?", 0},
		{"POST", "/", "", "{}", 0x40, mutDupParam, "", 2},
		{"POST", "/", "", "{}", 0x40, mutSignedByOther, "", 0},
		{"POST", "/", "", "{}", 0x40, mutOtherKey, "", 0},
		{"POST", "/", "", "{}", 0x40, mutScope, "eu-west-2", 1},
		{"POST", "/", "", "{}", 0x40, mutSignature, "", 7},
		{"POST", "/", "", "{}", 0x40, mutSignedHeaders, "", 0},
		{"POST", "/", "", "{}", 0x40, mutAddHeader, "X-Forwarded-For: 10.0.0.1", 2},
		{"POST", "/", "", "{}", 0x40, mutNameCase, "", 1},
		{"POST", "/", "", "{}", 0x54, mutBody, "", 0},
		{"POST", "/", "", "{}", 0x00, mutNone, "", 0}, // clock 320 s behind the signature
		{"POST", "/", "", "{}", 0xf0, mutNone, "", 0}, // 280 s ahead
	} {
		f.Add(s.method, s.target, s.headers, []byte(s.body), s.mode, s.mut, s.arg, s.pos)
	}
	f.Fuzz(func(t *testing.T, method, target, headers string, body []byte, mode, mut uint8, arg string, pos uint16) {
		w, ok := h.sigClient(method, target, headers, body, mode)
		if !ok {
			return
		}
		// mode's top bits are the server's clock: 320 s behind to 280 s ahead.
		now := sigT0.Add(time.Duration(int(mode>>4)-8) * 40 * time.Second)
		raw := w.bytes()
		r, rbody, ok := readServerRequest(raw)
		if !ok {
			t.Fatalf("the server cannot read the client's request:\n%q", raw)
		}
		v := h.check(r, rbody, now)
		if why := originalRefusal(r, &v, now); why != "" {
			if v.err == nil {
				t.Fatalf("verified a request it should refuse (%s):\n%q", why, raw)
			}
			return
		}
		if v.err != nil {
			t.Fatalf("signed request refused: %v\n%q", v.err, raw)
		}
		mraw, expect := h.mutate(w, mut, arg, pos)
		m, mbody, ok := readServerRequest(mraw)
		if !ok {
			return
		}
		mv := h.check(m, mbody, now)
		if expect == expectRefused && mv.err == nil {
			t.Fatalf("mutation %q verified:\n%q\n%q", mutNames[mut%mutKinds], raw, mraw)
		}
		if expect == expectVerified && mv.err != nil {
			t.Fatalf("mutation %q changes nothing signed, yet refused: %v\n%q\n%q", mutNames[mut%mutKinds], mv.err, raw, mraw)
		}
		if mv.err == nil {
			if d := signedDiff(r, m, &v, &mv); d != "" {
				t.Fatalf("mutation %q changed the signed %s, yet verified:\n%q\n%q", mutNames[mut%mutKinds], d, raw, mraw)
			}
		}
	})
}
