package kinesis

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	// ShardLimitScale multiplies those per-shard limits (0 means 1): a
	// fraction rehearses throttling with little traffic.
	ShardLimitScale float64
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
		if opts.ShardLimitScale > 0 {
			h.limits.scale = opts.ShardLimitScale
		}
	}
	h.account.path = opts.AccountSettingsFile
	if err := h.account.load(); err != nil {
		opts.Logger.Error("kinesis: account settings unreadable; starting from the defaults", "file", opts.AccountSettingsFile, "err", err)
	}
	h.mu.deleting = map[string]time.Time{}
	h.mu.subs = map[string]*subscription{}
	return h
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
		"CreateChannel":                          (*Handler).createDeliveryChannel,
		"DescribeChannel":                        (*Handler).describeDeliveryChannel,
		"UpdateChannel":                          (*Handler).updateDeliveryChannel,
		"DeleteChannel":                          (*Handler).deleteDeliveryChannel,
		"ListChannels":                           (*Handler).listDeliveryChannels,
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
	if c == codecJSON && name != "PutRecords" && !json.Valid(body) {
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
