package kinesis

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/runnel-dev/runnel/streams"
)

// Options configure the API handler.
type Options struct {
	// Region appears in ARNs; default "us-east-1".
	Region string
	// AccountID appears in ARNs and messages; default "000000000000".
	AccountID string
	// ShardLimits turns on AWS's per-shard throughput limits (writes 1 MiB/s
	// or 1,000 records/s, reads 2 MiB/s and 5 calls/s) and the account
	// shard limit (500). Off by default.
	ShardLimits bool
	// Logger receives internal failures; default slog.Default().
	Logger *slog.Logger
	// Now is the clock for iterators, tokens and status windows.
	Now func() time.Time
	// CreateDelay is how long a new stream or consumer reports CREATING
	// (and a deleted stream DELETING): quick, but visible to clients that
	// wait for ACTIVE. Default 300 ms; negative means no delay.
	CreateDelay time.Duration
	// IteratorTTL is how long a shard iterator or paging token stays
	// usable; default 5 minutes, as AWS.
	IteratorTTL time.Duration
	// SubscriptionTTL ends a SubscribeToShard stream; default 5 minutes.
	SubscriptionTTL time.Duration
	// Heartbeat is the longest gap between SubscribeToShard events;
	// default 5 s. Tests shorten it.
	Heartbeat time.Duration
	// TokenKey signs shard iterators and paging tokens (at least 16
	// bytes). Given the same key after a restart (runnel serve keeps one
	// in its data directory, see LoadTokenKey), iterators and tokens stay
	// usable until they expire, as AWS's do; when nil, a random key is
	// drawn and they end with the handler.
	TokenKey []byte
	// Faults fail a share of calls on purpose (see Fault); none by
	// default.
	Faults []Fault
	// AccountSettingsFile keeps the account settings (UpdateAccountSettings)
	// across restarts; in memory only when empty.
	AccountSettingsFile string
}

// DefaultCreateDelay is the CREATING/DELETING window of streams and
// consumers.
const DefaultCreateDelay = 300 * time.Millisecond

// RecommendedUpdateVisibility is the streams.Options.UpdateVisibility the
// server should use: resharded streams report UPDATING this long.
const RecommendedUpdateVisibility = 300 * time.Millisecond

func (o *Options) setDefaults() {
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.AccountID == "" {
		o.AccountID = "000000000000"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CreateDelay == 0 {
		o.CreateDelay = DefaultCreateDelay
	} else if o.CreateDelay < 0 {
		o.CreateDelay = 0
	}
	if o.IteratorTTL <= 0 {
		o.IteratorTTL = 5 * time.Minute
	}
	if o.SubscriptionTTL <= 0 {
		o.SubscriptionTTL = 5 * time.Minute
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 5 * time.Second
	}
}

// Handler serves the Kinesis API over a store.
type Handler struct {
	store  *streams.Store
	opts   Options
	key    []byte // signs iterators and paging tokens
	limits *limiter
	cache  factCache
	idMu   sync.Mutex
	ids    *mrand.ChaCha8

	mu struct {
		sync.Mutex
		deleting map[string]time.Time // stream name → end of its DELETING window
		subs     map[string]*subscription
	}
	// consumerMu serialises read-modify-write of the consumer lists.
	consumerMu sync.Mutex
	account    accountStore
	rcap       recordCap
	spreadNext atomic.Uint64 // AUTO distribution's turn
}

// New returns the handler for `POST /` requests with an X-Amz-Target.
func New(store *streams.Store, opts Options) http.Handler {
	return newHandler(store, opts)
}

func newHandler(store *streams.Store, opts Options) *Handler {
	opts.setDefaults()
	h := &Handler{store: store, opts: opts, key: opts.TokenKey}
	var seed [32]byte
	if len(h.key) < 16 {
		h.key = make([]byte, 32)
		if _, err := rand.Read(h.key); err != nil {
			panic("kinesis: no randomness for the iterator key: " + err.Error())
		}
	}
	if _, err := rand.Read(seed[:]); err != nil {
		panic("kinesis: no randomness for request IDs: " + err.Error())
	}
	h.ids = mrand.NewChaCha8(seed)
	if opts.ShardLimits {
		h.limits = newLimiter(opts.Now)
	}
	h.account.path = opts.AccountSettingsFile
	if err := h.account.load(); err != nil {
		opts.Logger.Error("kinesis: account settings unreadable; starting from the defaults", "file", opts.AccountSettingsFile, "err", err)
	}
	h.mu.deleting = map[string]time.Time{}
	h.mu.subs = map[string]*subscription{}
	return h
}

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

// request is one decoded API call.
type request struct {
	ctx    context.Context
	codec  codec
	body   []byte
	w      http.ResponseWriter
	httpRq *http.Request
	reqID  string
}

// streamed is returned by an operation that wrote its own response.
type streamed struct{}

// rawBody is a response body an operation encoded itself.
type rawBody []byte

type operation func(h *Handler, r *request) (any, error)

var operations map[string]operation

func init() {
	operations = map[string]operation{
		"CreateStream":                  (*Handler).createStream,
		"DeleteStream":                  (*Handler).deleteStream,
		"DescribeStream":                (*Handler).describeStream,
		"DescribeStreamSummary":         (*Handler).describeStreamSummary,
		"ListStreams":                   (*Handler).listStreams,
		"ListShards":                    (*Handler).listShards,
		"PutRecord":                     (*Handler).putRecord,
		"PutRecords":                    (*Handler).putRecords,
		"GetShardIterator":              (*Handler).getShardIterator,
		"GetRecords":                    (*Handler).getRecords,
		"SplitShard":                    (*Handler).splitShard,
		"MergeShards":                   (*Handler).mergeShards,
		"UpdateShardCount":              (*Handler).updateShardCount,
		"IncreaseStreamRetentionPeriod": (*Handler).increaseRetention,
		"DecreaseStreamRetentionPeriod": (*Handler).decreaseRetention,
		"AddTagsToStream":               (*Handler).addTagsToStream,
		"RemoveTagsFromStream":          (*Handler).removeTagsFromStream,
		"ListTagsForStream":             (*Handler).listTagsForStream,
		"TagResource":                   (*Handler).tagResource,
		"UntagResource":                 (*Handler).untagResource,
		"ListTagsForResource":           (*Handler).listTagsForResource,
		"DescribeLimits":                (*Handler).describeLimits,
		"RegisterStreamConsumer":        (*Handler).registerConsumer,
		"DeregisterStreamConsumer":      (*Handler).deregisterConsumer,
		"DescribeStreamConsumer":        (*Handler).describeConsumer,
		"ListStreamConsumers":           (*Handler).listConsumers,
		"SubscribeToShard":              (*Handler).subscribeToShard,
		"StartStreamEncryption":         (*Handler).startEncryption,
		"StopStreamEncryption":          (*Handler).stopEncryption,
		"EnableEnhancedMonitoring":      (*Handler).enableMonitoring,
		"DisableEnhancedMonitoring":     (*Handler).disableMonitoring,
		"UpdateStreamMode":              (*Handler).updateStreamMode,

		"PutResourcePolicy":                      (*Handler).putResourcePolicy,
		"GetResourcePolicy":                      (*Handler).getResourcePolicy,
		"DeleteResourcePolicy":                   (*Handler).deleteResourcePolicy,
		"DescribeAccountSettings":                (*Handler).describeAccountSettings,
		"UpdateAccountSettings":                  (*Handler).updateAccountSettings,
		"UpdateMaxRecordSize":                    (*Handler).updateMaxRecordSize,
		"UpdateStreamWarmThroughput":             (*Handler).updateStreamWarmThroughput,
		"UpdateStreamRecordDistributionStrategy": (*Handler).updateRecordDistribution,
		"CreateChannel":                          (*Handler).createChannel,
		"DescribeChannel":                        (*Handler).channelNotFound,
		"UpdateChannel":                          (*Handler).channelNotFound,
		"DeleteChannel":                          (*Handler).channelNotFound,
		"ListChannels":                           (*Handler).listChannels,
	}
}

const targetPrefix = "Kinesis_20131202."

// maxBody bounds a request body: PutRecords carries at most 10 MiB of data
// (5 MiB per request on AWS), base64 inflates it by a third.
const maxBody = 16 << 20

func (h *Handler) ServeHTTP(w http.ResponseWriter, hr *http.Request) {
	reqID := h.requestID()
	c, known := requestCodec(hr.Header.Get("Content-Type"))
	r := &request{ctx: hr.Context(), codec: c, w: w, httpRq: hr, reqID: reqID}
	target := hr.Header.Get("X-Amz-Target")
	name, found := strings.CutPrefix(target, targetPrefix)
	op := operations[name]
	if hr.Method == http.MethodPost && !known && found && op != nil {
		h.wrongContentType(r)
		return
	}
	if hr.Method != http.MethodPost || !known || !found || op == nil {
		// AWS answers every request it cannot map to an operation this
		// way, in CBOR unless the body was declared JSON 1.1.
		e := &apiError{Type: excUnknownOperation, Status: http.StatusBadRequest}
		if known && found && op == nil && name != "" {
			e.Message = "Kinesis_20131202." + name + " is not an operation of this server"
		}
		h.writeError(r, e)
		return
	}
	body, pre := bodyFrom(hr.Context())
	if !pre {
		var rerr *apiError
		if body, rerr = readBody(hr); rerr != nil {
			h.writeError(r, rerr)
			return
		}
		defer putBuf(body)
	}
	r.body = body
	if c == codecJSON && !json.Valid(body) && name != "PutRecords" {
		// An empty body is not a JSON document either: AWS's SDKs send
		// "{}" for an operation without input members.
		h.writeError(r, &apiError{Type: excSerialization, Status: http.StatusBadRequest})
		return
	}
	if err := checkAuth(hr); err != nil {
		h.writeError(r, err)
		return
	}
	if err := h.inject(name); err != nil {
		h.writeError(r, err)
		return
	}
	hot := name == "PutRecords"
	if !hot {
		if err := h.authorizeRequest(r, name); err != nil {
			h.writeError(r, asAPIError(err))
			return
		}
		check := modelError
		if c == codecCBOR {
			check = modelErrorCBOR
		}
		if err := check(name, body, h.recordCapBytes()); err != nil {
			h.writeError(r, err)
			return
		}
	}
	out, err := op(h, r)
	if err != nil {
		ae := asAPIError(err)
		if hot && (ae.Type == excValidation || ae.Type == excSerialization) {
			// The hot path checks for itself; AWS's exact text comes
			// from the model.
			check := modelError
			if c == codecCBOR {
				check = modelErrorCBOR
			}
			if me := check(name, body, h.recordCapBytes()); me != nil {
				ae = me
			}
		}
		h.writeError(r, ae)
		return
	}
	switch v := out.(type) {
	case streamed:
		return
	case empty:
		h.writeBody(r, http.StatusOK, nil)
		return
	case rawBody:
		h.writeBody(r, http.StatusOK, v)
		putBuf(v)
		return
	}
	b, err := encode(c, out)
	if err != nil {
		h.writeError(r, internalErr(err))
		return
	}
	h.writeBody(r, http.StatusOK, b)
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
// the records it takes). Small and large buffers are pooled apart, so that
// the small ones of single-record calls do not stand in the way of a
// PutRecords body (a buffer too small for a request is a new allocation).
var bufPools [2]sync.Pool

const (
	maxPooledBuf = 4 << 20
	largeBuf     = 16 << 10
)

func bufPool(n int) *sync.Pool {
	if n >= largeBuf {
		return &bufPools[1]
	}
	return &bufPools[0]
}

func getBuf(n int) []byte {
	pool := bufPool(n)
	if p, ok := pool.Get().(*[]byte); ok && cap(*p) >= n {
		return (*p)[:0]
	} else if ok {
		pool.Put(p)
	}
	return make([]byte, 0, max(n, 4096))
}

func putBuf(b []byte) {
	if cap(b) <= maxPooledBuf {
		b = b[:0]
		bufPool(cap(b)).Put(&b)
	}
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

// streamARN renders a stream's ARN.
func (h *Handler) streamARN(name string) string {
	return "arn:aws:kinesis:" + h.opts.Region + ":" + h.opts.AccountID + ":stream/" + name
}

// parseStreamARN returns the stream name of an ARN of this region and
// account.
func (h *Handler) parseStreamARN(arn string) (string, bool) {
	rest, ok := strings.CutPrefix(arn, "arn:aws:kinesis:"+h.opts.Region+":"+h.opts.AccountID+":stream/")
	if !ok || rest == "" || strings.Contains(rest, "/") {
		return "", false
	}
	return rest, true
}

var streamARNPattern = "arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+"

func validStreamName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func looksLikeStreamARN(s string) bool {
	if !strings.HasPrefix(s, "arn:aws") {
		return false
	}
	parts := strings.SplitN(s, ":", 6)
	if len(parts) < 6 || parts[2] != "kinesis" || len(parts[4]) != 12 {
		return false
	}
	for _, c := range parts[4] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return strings.HasPrefix(parts[5], "stream/") && len(parts[5]) > len("stream/") && !strings.ContainsAny(parts[5], " \t\n")
}

// validateRef adds the StreamName/StreamARN checks to v.
func validateRef(v *validator, ref streamRef) {
	v.length("streamName", ref.StreamName, 1, 128)
	v.pattern("streamName", ref.StreamName, validStreamName, "[a-zA-Z0-9_.-]+")
	v.length("streamARN", ref.StreamARN, 1, 2048)
	v.pattern("streamARN", ref.StreamARN, looksLikeStreamARN, streamARNPattern)
}

// resolve names the stream a request addresses by StreamName or StreamARN
// (both must agree when both are given).
func (h *Handler) resolve(ref streamRef) (string, error) {
	var v validator
	validateRef(&v, ref)
	if err := v.err(); err != nil {
		return "", err
	}
	return h.resolveValid(ref)
}

func (h *Handler) resolveValid(ref streamRef) (string, error) {
	switch {
	case ref.StreamARN != nil:
		name, ok := h.parseStreamARN(*ref.StreamARN)
		if !ok {
			return "", newErr(excResourceNotFound, "Stream %s not found.", *ref.StreamARN)
		}
		if ref.StreamName != nil && *ref.StreamName != name {
			return "", newErr(excInvalidArgument, "StreamARN %s and StreamName %s do not refer to the same stream.", *ref.StreamARN, *ref.StreamName)
		}
		return name, nil
	case ref.StreamName != nil:
		return *ref.StreamName, nil
	}
	return "", newErr(excValidation, "1 validation error detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null")
}

// describe loads a stream's state, mapping "not found" (and streams inside
// their DELETING window) to AWS's error.
func (h *Handler) describe(name string) (streams.StreamInfo, error) {
	info, err := h.store.DescribeStream(name)
	if err != nil {
		return info, h.mapErr(name, err)
	}
	return info, nil
}

// mapErr converts a streams error into the API's.
func (h *Handler) mapErr(name string, err error) error {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var se *streams.Error
	errors.As(err, &se)
	switch {
	case errors.Is(err, streams.ErrStreamNotFound), errors.Is(err, streams.ErrStreamNotActive):
		return h.notFound(name)
	case errors.Is(err, streams.ErrStreamExists):
		return h.inUse(name)
	case errors.Is(err, streams.ErrShardNotFound):
		return newErr(excResourceNotFound, "Could not find shard in stream %s under account %s.", name, h.opts.AccountID)
	case errors.Is(err, streams.ErrShardClosed):
		return newErr(excResourceInUse, "Shard in stream %s under account %s has already been merged or split, and thus is not eligible for merging or splitting.", name, h.opts.AccountID)
	case errors.Is(err, streams.ErrInvalid):
		msg := err.Error()
		if se != nil {
			msg = se.Msg
		}
		return newErr(excInvalidArgument, "%s", msg)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return internalErr(fmt.Errorf("request cancelled: %w", err))
	case errors.Is(err, streams.ErrLimitExceeded):
		return newErr(excLimitExceeded, "%s", err.Error())
	case errors.Is(err, streams.ErrUnavailable):
		// A full disk: retryable, and throttled clients back off.
		return newErr(excThroughputExceeded, "%s", err.Error())
	}
	return internalErr(err)
}
