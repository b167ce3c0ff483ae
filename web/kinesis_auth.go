package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/google/uuid"
	"github.com/runnel-dev/runnel/web/auth"
	"github.com/runnel-dev/runnel/web/kinesis"
)

// Authentication and authorisation of the Kinesis API (POST /), wrapped
// around web/kinesis's handler: the SigV4 signature is recomputed with the
// token's derived secret (auth.VerifySigV4), each operation needs a role,
// and a token limited to streams may only name those. Failures are answered
// with AWS's exception types, as the SDKs expect.

// kinesisRoles is the role each Kinesis operation needs. An operation not
// listed needs admin.
var kinesisRoles = map[string]auth.Role{
	"DescribeStream":           auth.Reader,
	"DescribeStreamSummary":    auth.Reader,
	"ListStreams":              auth.Reader,
	"ListShards":               auth.Reader,
	"GetShardIterator":         auth.Reader,
	"GetRecords":               auth.Reader,
	"ListTagsForStream":        auth.Reader,
	"ListTagsForResource":      auth.Reader,
	"DescribeLimits":           auth.Reader,
	"DescribeStreamConsumer":   auth.Reader,
	"ListStreamConsumers":      auth.Reader,
	"SubscribeToShard":         auth.Reader,
	"RegisterStreamConsumer":   auth.Reader, // a consumer is a reader's own cursor (enhanced fan-out)
	"DeregisterStreamConsumer": auth.Reader,

	"PutRecord":                     auth.Writer,
	"PutRecords":                    auth.Writer,
	"CreateStream":                  auth.Writer,
	"SplitShard":                    auth.Writer,
	"MergeShards":                   auth.Writer,
	"UpdateShardCount":              auth.Writer,
	"IncreaseStreamRetentionPeriod": auth.Writer,
	"AddTagsToStream":               auth.Writer,
	"RemoveTagsFromStream":          auth.Writer,
	"TagResource":                   auth.Writer,
	"UntagResource":                 auth.Writer,
	"StartStreamEncryption":         auth.Writer,
	"StopStreamEncryption":          auth.Writer,
	"EnableEnhancedMonitoring":      auth.Writer,
	"DisableEnhancedMonitoring":     auth.Writer,
	"UpdateStreamMode":              auth.Writer,

	"DeleteStream":                  auth.Admin,
	"DecreaseStreamRetentionPeriod": auth.Admin, // trims records away
}

// kinesisStreamless operations name no stream; a token limited to streams
// may still call them (ListStreams then shows only the streams it may use).
var kinesisStreamless = map[string]bool{"ListStreams": true, "DescribeLimits": true}

// kinesisMaxBody bounds what is read to check a signature; the Kinesis
// handler's own limit is the same.
const kinesisMaxBody = 16 << 20

var kinesisBodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (s *Server) kinesisAuth(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if !s.sec.Auth {
		next.ServeHTTP(w, r)
		return
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "Kinesis_20131202.")
	h := r.Header.Get("Authorization")
	if h == "" {
		if r.URL.Query().Get("X-Amz-Algorithm") != "" {
			s.kinesisRefuse(w, r, &auth.AWSError{Type: auth.ExcIncompleteSignature, Message: "Query-string (presigned) authentication is not supported here; sign the Authorization header."})
			return
		}
		s.kinesisRefuse(w, r, &auth.AWSError{Type: auth.ExcMissingAuthToken, Message: "Missing Authentication Token"})
		return
	}
	var a auth.Authorization
	if err := a.Parse(h); err != nil {
		if ae, ok := err.(*auth.AWSError); ok {
			s.kinesisRefuse(w, r, ae)
			return
		}
		s.kinesisRefuse(w, r, &auth.AWSError{Type: auth.ExcIncompleteSignature, Message: "Authorization header requires AWS4-HMAC-SHA256 as the signing algorithm. Authorization=" + h})
		return
	}
	var p *auth.Principal
	buf := kinesisBodies.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 4<<20 {
			kinesisBodies.Put(buf)
		}
	}()
	if a.Scheme == auth.SchemeBearer {
		// Runnel's own clients (runnel put, the producer and agent) may
		// present a bearer token instead of signing.
		var ok bool
		if p, ok = s.sec.Tokens.Bearer(a.Token); !ok {
			s.kinesisRefuse(w, r, auth.UnknownAccessKey)
			return
		}
		if !p.Unrestricted() && !s.readKinesisBody(w, r, buf) {
			return
		}
	} else {
		var secret string
		var ok bool
		if p, secret, ok = s.sec.Tokens.AccessKey(a.AccessKeyID); !ok {
			s.kinesisRefuse(w, r, auth.UnknownAccessKey)
			return
		}
		if !s.verifyKinesisSigV4(w, r, &a, secret, p, buf) {
			return
		}
	}
	// The role and stream grants are the caller's identity policy. A call
	// they do not allow goes on to the Kinesis handler with the refusal,
	// which it answers unless the resource policy of what the call acts
	// on allows the caller (see web/kinesis's policy.go).
	c := &kinesis.Caller{Name: p.Name, Admin: p.Can(auth.Admin) && p.Unrestricted()}
	role, known := kinesisRoles[op]
	if !known {
		role = auth.Admin
	}
	if !p.Can(role) {
		c.Refusal = "User: " + p.Name + " (role " + p.Role.String() + ") is not authorized to perform: kinesis:" + op + " (it needs the " + role.String() + " role)"
	} else if !p.Unrestricted() && !kinesisStreamless[op] {
		name, ok := kinesis.StreamOf(r.Header.Get("Content-Type"), buf.Bytes())
		if !ok || !p.CanStream(name) {
			c.Refusal = "User: " + p.Name + " is not authorized to perform: kinesis:" + op + " on stream " + quoteHost(name) + " (it may use streams " + strings.Join(p.Streams, ",") + ")"
		}
	}
	if !p.Unrestricted() {
		c.Sees = p.CanStream
	}
	c.Refused = func() { s.refused(r, auth.ExcAccessDenied) }
	ctx := kinesis.WithCaller(contextWithPrincipal(r.Context(), p), c)
	if r.Body == http.NoBody || buf.Len() > 0 {
		// The body was read here already (to hash it or find its
		// stream): the handler takes it as it is rather than copying it
		// again. buf goes back to its pool only after the handler returns.
		ctx = kinesis.WithBody(ctx, buf.Bytes())
	}
	next.ServeHTTP(w, r.WithContext(ctx))
}

// readKinesisBody reads a Kinesis request's body into buf (bounded) and puts
// it back for the handler; it answers the request and returns false when the
// body cannot be read.
func (s *Server) readKinesisBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) bool {
	if r.ContentLength > 0 && r.ContentLength <= kinesisMaxBody {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, kinesisMaxBody+1)); err != nil {
		if errors.Is(err, errBodyBusy) {
			kinesis.WriteThrottled(w, r, 1, err.Error())
			return false
		}
		s.kinesisRefuse(w, r, &auth.AWSError{Type: "SerializationException", Message: "Could not read the request body: " + err.Error()})
		return false
	}
	if buf.Len() > kinesisMaxBody {
		s.kinesisRefuse(w, r, &auth.AWSError{Type: "SerializationException", Message: "Request body exceeds the limit of 16777216 bytes"})
		return false
	}
	r.Body = http.NoBody
	if buf.Len() > 0 {
		r.Body = io.NopCloser(bytes.NewReader(buf.Bytes()))
	}
	return true
}

// verifyKinesisSigV4 checks a's signature of r with secret, reading the body
// into buf where its hash or (for a token limited to streams) its stream is
// needed; it answers the request and returns false when the check fails.
func (s *Server) verifyKinesisSigV4(w http.ResponseWriter, r *http.Request, a *auth.Authorization, secret string, p *auth.Principal, buf *bytes.Buffer) bool {
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if strings.HasPrefix(payload, "STREAMING-") {
		// aws-chunked bodies (S3 uploads) carry per-chunk signatures that
		// this API neither needs nor checks.
		s.kinesisRefuse(w, r, &auth.AWSError{Type: auth.ExcInvalidSignature, Message: "x-amz-content-sha256 " + payload + " (aws-chunked bodies) is not supported by the Kinesis API; sign the body's SHA-256 or UNSIGNED-PAYLOAD."})
		return false
	}
	if payload != auth.UnsignedPayload || !p.Unrestricted() {
		// The body is needed to hash it, or to see which streams it names.
		if !s.readKinesisBody(w, r, buf) {
			return false
		}
	}
	sum := payload
	if payload != auth.UnsignedPayload {
		// The body is hashed once; the header, when sent, must name that
		// hash, and is then the text the signature covers as it is.
		h := sha256.Sum256(buf.Bytes())
		var hx [2 * sha256.Size]byte
		hex.Encode(hx[:], h[:])
		switch {
		case payload == "":
			sum = string(hx[:])
		case payload != string(hx[:]):
			s.kinesisRefuse(w, r, &auth.AWSError{Type: auth.ExcInvalidSignature, Message: "The provided 'x-amz-content-sha256' header does not match what was computed."})
			return false
		}
	}
	now := time.Now
	if s.sec.Now != nil {
		now = s.sec.Now
	}
	cl := r.ContentLength
	if cl < 0 && buf.Len() > 0 {
		cl = int64(buf.Len()) // HTTP/2 without content-length
	}
	vr := &auth.SigV4Request{Method: r.Method, URL: r.URL, Host: r.Host, Header: r.Header, ContentLength: cl, PayloadHash: sum}
	if err := auth.VerifySigV4(r.Context(), vr, a, secret, "kinesis", now()); err != nil {
		s.kinesisRefuse(w, r, err.(*auth.AWSError))
		return false
	}
	return true
}

// kinesisRefuse answers a Kinesis request with an AWS exception.
func (s *Server) kinesisRefuse(w http.ResponseWriter, r *http.Request, e *auth.AWSError) {
	s.refused(r, e.Type)
	body := map[string]string{"__type": e.Type, "message": e.Message}
	ct := "application/x-amz-json-1.1"
	var b []byte
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-amz-cbor-1.1" {
		ct = mt
		b, _ = cbor.Marshal(body)
	} else {
		b, _ = json.Marshal(body)
	}
	hd := w.Header()
	hd.Set("Content-Type", ct)
	hd.Set("X-Amzn-Requestid", uuid.NewString())
	hd.Set("X-Amzn-Errortype", e.Type)
	w.WriteHeader(http.StatusBadRequest)
	w.Write(b)
}
