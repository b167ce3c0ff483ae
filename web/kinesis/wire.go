package kinesis

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/bits"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// The wire side of a call: request IDs, media types, reading bodies into
// pooled buffers, the SigV4-shaped header check and writing answers.

// requestID returns a random (version 4) UUID. It draws from a per-handler
// ChaCha8 generator seeded from crypto/rand, which costs far less per
// request than a crypto/rand read; request IDs need to be unique, not
// secret.
func (h *Handler) requestID() string {
	h.idMu.Lock()
	var b [16]byte
	h.ids.Read(b[:])
	h.idMu.Unlock()
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// extendedRequestID returns a value for x-amz-id-2: AWS sends 72 random
// bytes in base64 there.
func (h *Handler) extendedRequestID() string {
	var b [72]byte
	h.idMu.Lock()
	h.ids.Read(b[:])
	h.idMu.Unlock()
	return base64.StdEncoding.EncodeToString(b[:])
}

// H2C wraps a handler so that it also speaks cleartext HTTP/2, which the
// SDKs use for SubscribeToShard when the endpoint offers it.
func H2C(h http.Handler) http.Handler {
	return h2c.NewHandler(h, &http2.Server{})
}

// requestCodec maps a Content-Type to the codec of the request and its
// answer. Only AWS's two media types name an operation's encoding; any
// other (or none) is answered in CBOR, as AWS does.
func requestCodec(ct string) (codec, bool) {
	mt, _, _ := strings.Cut(ct, ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case contentJSON:
		return codecJSON, true
	case contentCBOR:
		return codecCBOR, true
	}
	return codecCBOR, false
}

// wrongContentType answers a request for a real operation in a media type
// AWS does not take for it, as AWS does: the legacy "application/json"
// gets the old JSON protocol's envelope, anything else a CBOR
// SerializationException.
func (h *Handler) wrongContentType(r *request) {
	mt, _, _ := strings.Cut(r.httpRq.Header.Get("Content-Type"), ";")
	body, _ := io.ReadAll(io.LimitReader(r.httpRq.Body, 1<<20))
	if strings.ToLower(strings.TrimSpace(mt)) == "application/json" && len(body) > 0 {
		typ, status := "UnknownOperationException", http.StatusNotFound
		if !json.Valid(body) {
			typ, status = "SerializationException", http.StatusBadRequest
		}
		b := []byte(`{"Output":{"__type":"com.amazon.coral.service#` + typ + `"},"Version":"1.0"}`)
		hd := r.w.Header()
		hd["Content-Type"] = []string{"application/json"}
		hd["X-Amzn-Requestid"] = []string{r.reqID}
		hd["X-Amz-Id-2"] = []string{h.extendedRequestID()}
		hd["Content-Length"] = []string{strconv.Itoa(len(b))}
		r.w.WriteHeader(status)
		r.w.Write(b)
		return
	}
	h.writeError(r, &apiError{Type: excSerialization, Status: http.StatusBadRequest})
}

// throttled says a body read failed because the server holds too many
// request bytes (the web server's --max-inflight, whose error has a
// Throttled method): a retryable ProvisionedThroughputExceededException,
// as a request refused before its body is read gets.
func throttled(err error) bool {
	var t interface{ Throttled() bool }
	return errors.As(err, &t) && t.Throttled()
}

func readBody(hr *http.Request) ([]byte, *apiError) {
	if hr.ContentLength > maxBody {
		return nil, newErr(excSerialization, "Request body of %d bytes exceeds the limit of %d bytes", hr.ContentLength, maxBody)
	}
	n := hr.ContentLength
	if n < 0 {
		n = 4096
	}
	buf := getBuf(int(n) + 1)
	lr := io.LimitReader(hr.Body, maxBody+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			break
		}
		if err != nil {
			if throttled(err) {
				return nil, newErr(excThroughputExceeded, "%v", err)
			}
			return nil, newErr(excSerialization, "Could not read the request body: %v", err)
		}
	}
	if len(buf) > maxBody {
		return nil, newErr(excSerialization, "Request body exceeds the limit of %d bytes", maxBody)
	}
	return buf, nil
}

// Request bodies, PutRecords' decoded data and its response are pooled:
// at 500 records a call they are most of the garbage the hot path makes.
// A buffer goes back once nothing refers to it (streams.Store.Put copies
// the records it takes). Buffers are pooled by size class, a power of two
// from minPooledBuf to maxPooledBuf, and made with their class's full
// size: a PutRecords call takes three large buffers of different sizes
// (body, data, response), and in one pool for all of them a Get often
// found one too small for its use, dropped it and allocated anew.
var bufPools [bufClasses]sync.Pool

const (
	minPooledBuf = 4 << 10
	maxPooledBuf = 4 << 20
	bufClasses   = 11 // minPooledBuf << (bufClasses-1) == maxPooledBuf
)

// bufClass is the index of the smallest class that holds n bytes, or -1
// when n is beyond the largest.
func bufClass(n int) int {
	if n <= minPooledBuf {
		return 0
	}
	c := bits.Len(uint(n-1)) - bits.Len(minPooledBuf-1)
	if c >= len(bufPools) {
		return -1
	}
	return c
}

func getBuf(n int) []byte {
	c := bufClass(n)
	if c < 0 {
		return make([]byte, 0, n)
	}
	if p, ok := bufPools[c].Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, minPooledBuf<<c)
}

// putBuf pools b in the largest class it fills, so that every buffer a
// class hands out holds that class's size.
func putBuf(b []byte) {
	if cap(b) < minPooledBuf || cap(b) > maxPooledBuf {
		return
	}
	c := bits.Len(uint(cap(b))) - bits.Len(minPooledBuf)
	b = b[:0]
	bufPools[c].Put(&b)
}

// checkAuth accepts any well-formed SigV4 request (signatures are verified
// by the authentication layer around this handler, when there is one) and
// rejects unsigned or malformed ones as AWS does, with AWS's texts: the
// Authorization header and the presigned query string are checked for
// their parts, never both at once. A Runnel bearer token passes too: the
// authentication layer checks it like a signature.
func checkAuth(hr *http.Request) *apiError {
	auth := hr.Header.Get("Authorization")
	q := hr.URL.Query()
	_, presigned := q["X-Amz-Algorithm"]
	switch {
	case strings.HasPrefix(auth, "Bearer ") && !presigned:
		return nil
	case auth != "" && presigned:
		return newErr(excInvalidSignature, "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.")
	case auth != "":
		var missing []string
		for _, p := range []string{"Credential", "Signature", "SignedHeaders"} {
			if !strings.Contains(auth, p+"=") {
				missing = append(missing, "Authorization header requires '"+p+"' parameter.")
			}
		}
		if hr.Header.Get("X-Amz-Date") == "" && hr.Header.Get("Date") == "" {
			missing = append(missing, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
		}
		if len(missing) > 0 {
			return newErr(excIncompleteSignature, "%s Authorization=%s", strings.Join(missing, " "), auth)
		}
	case presigned:
		var missing []string
		for _, p := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date"} {
			if q.Get(p) == "" {
				missing = append(missing, "AWS query-string parameters must include '"+p+"'.")
			}
		}
		if len(missing) > 0 {
			return newErr(excIncompleteSignature, "%s Re-examine the query-string parameters.", strings.Join(missing, " "))
		}
	default:
		return newErr(excMissingAuthToken, "Missing Authentication Token")
	}
	return nil
}

func (h *Handler) writeBody(r *request, status int, b []byte) {
	hd := r.w.Header()
	hd["Content-Type"] = []string{r.codec.contentType()}
	hd["X-Amzn-Requestid"] = []string{r.reqID}
	hd["X-Amz-Id-2"] = []string{h.extendedRequestID()}
	hd["Content-Length"] = []string{strconv.Itoa(len(b))}
	r.w.WriteHeader(status)
	r.w.Write(b)
}

func (h *Handler) writeError(r *request, e *apiError) {
	if e.Status >= 500 && !e.injected {
		if r.httpRq.Context().Err() != nil {
			// The client went away: nobody reads this answer, and it is
			// not a server fault.
			h.opts.Logger.Debug("kinesis api request cancelled by the client", "request_id", r.reqID)
		} else {
			h.opts.Logger.Error("kinesis api internal failure", "request_id", r.reqID, "err", e.Message)
		}
	}
	r.w.Header().Set("X-Amzn-ErrorType", e.Type)
	h.writeBody(r, e.Status, errorBody(r.codec, e))
}
