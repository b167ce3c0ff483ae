package kinesis

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/runnel-dev/runnel/streams"
)

// Fault is one fault-injection rule: a share of an operation's calls
// fails on purpose, before the operation runs, so that clients' retry
// and back-off paths can be tested against a real server. The record
// kinds fail single entries of PutRecords instead, as AWS does when some
// records of a request are throttled.
type Fault struct {
	// Op is the operation name ("PutRecords"), or "*" for every one.
	// The record kinds name PutRecords.
	Op string
	// Kind is "throttle" (ProvisionedThroughputExceededException on the
	// data operations, LimitExceededException on the others, both 400),
	// "internal" (InternalFailure, 500), or, for PutRecords's entries,
	// "record-throttle" or "record-internal": the call answers 200 and
	// that share of its entries carries the ErrorCode
	// ProvisionedThroughputExceededException or InternalFailure and is
	// not stored, while the others are.
	Kind string
	// Rate is the share of calls (of entries, for the record kinds) that
	// fail, in [0, 1].
	Rate float64
}

// Fault kinds.
const (
	faultThrottle       = "throttle"
	faultInternal       = "internal"
	faultRecordThrottle = "record-throttle"
	faultRecordInternal = "record-internal"
)

// perRecord reports whether the rule fails PutRecords's entries rather
// than whole calls.
func (f Fault) perRecord() bool {
	return f.Kind == faultRecordThrottle || f.Kind == faultRecordInternal
}

// ParseFaults reads a fault list: comma-separated OP:KIND:RATE, for
// example "PutRecords:throttle:0.1,*:internal:0.01" or
// "PutRecords:record-throttle:0.2".
func ParseFaults(spec string) ([]Fault, error) {
	var out []Fault
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		f := strings.Split(part, ":")
		if len(f) != 3 {
			return nil, fmt.Errorf("fault %q: want OP:KIND:RATE, e.g. PutRecords:throttle:0.1", part)
		}
		if f[0] != "*" && operations[f[0]] == nil {
			return nil, fmt.Errorf("fault %q: %s is not a Kinesis operation", part, f[0])
		}
		switch f[1] {
		case faultThrottle, faultInternal:
		case faultRecordThrottle, faultRecordInternal:
			if f[0] != "PutRecords" {
				return nil, fmt.Errorf("fault %q: %s fails entries of PutRecords: OP must be PutRecords", part, f[1])
			}
		default:
			return nil, fmt.Errorf("fault %q: kind must be throttle or internal, or for PutRecords's entries record-throttle or record-internal", part)
		}
		rate, err := strconv.ParseFloat(f[2], 64)
		if err != nil || !(rate >= 0 && rate <= 1) {
			return nil, fmt.Errorf("fault %q: rate must be a number in [0, 1]", part)
		}
		out = append(out, Fault{Op: f[0], Kind: f[1], Rate: rate})
	}
	return out, nil
}

// dataOps answer throttling with ProvisionedThroughputExceededException.
var dataOps = map[string]bool{"PutRecord": true, "PutRecords": true, "GetRecords": true, "GetShardIterator": true, "SubscribeToShard": true}

// draw returns a number in [0, 1) from the handler's generator; the
// caller holds h.idMu.
func (h *Handler) draw() float64 {
	return float64(h.ids.Uint64()>>11) / (1 << 53)
}

// inject returns the injected failure for this call of op, or nil.
func (h *Handler) inject(op string) *apiError {
	for _, f := range h.opts.Faults {
		if f.perRecord() || (f.Op != "*" && f.Op != op) {
			continue
		}
		h.idMu.Lock()
		x := h.draw()
		h.idMu.Unlock()
		if x >= f.Rate {
			continue
		}
		if f.Kind == faultInternal {
			return &apiError{Type: excInternalFailure, Message: "Injected fault (runnel serve --inject)", Status: http.StatusInternalServerError, injected: true}
		}
		if dataOps[op] {
			return newErr(excThroughputExceeded, "Rate exceeded for %s (injected fault, runnel serve --inject).", op)
		}
		return newErr(excLimitExceeded, "Rate exceeded for %s (injected fault, runnel serve --inject).", op)
	}
	return nil
}

// injectRecords draws the record rules for each of a PutRecords's
// entries, routed as the store will route them, and returns each
// entry's failure (nil for an entry to store), or nil when no entry
// fails. The first rule that fires for an entry wins. The messages are
// AWS's own: a client cannot tell an injected failure from a real one.
func (h *Handler) injectRecords(name string, recs []streams.PutRecord) []*apiError {
	var failed []*apiError
	var shards []string
	for _, f := range h.opts.Faults {
		if !f.perRecord() || f.Rate == 0 {
			continue
		}
		for i := range recs {
			if failed != nil && failed[i] != nil {
				continue
			}
			h.idMu.Lock()
			x := h.draw()
			h.idMu.Unlock()
			if x >= f.Rate {
				continue
			}
			if failed == nil {
				failed = make([]*apiError, len(recs))
			}
			if f.Kind == faultRecordInternal {
				failed[i] = newErr(excInternalFailure, "Internal Service Failure")
				continue
			}
			if shards == nil {
				shards = h.shardsOf(name, recs)
			}
			failed[i] = h.throttledWrite(name, shards[i])
		}
	}
	return failed
}
