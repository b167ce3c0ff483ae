package kinesis

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Fault is one fault-injection rule: a share of an operation's calls
// fails on purpose, before the operation runs, so that clients' retry
// and back-off paths can be tested against a real server.
type Fault struct {
	// Op is the operation name ("PutRecords"), or "*" for every one.
	Op string
	// Kind is "throttle" (ProvisionedThroughputExceededException on the
	// data operations, LimitExceededException on the others, both 400)
	// or "internal" (InternalFailure, 500).
	Kind string
	// Rate is the share of calls that fail, in (0, 1].
	Rate float64
}

// ParseFaults reads a fault list: comma-separated OP:KIND:RATE, for
// example "PutRecords:throttle:0.1,*:internal:0.01".
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
		if f[1] != "throttle" && f[1] != "internal" {
			return nil, fmt.Errorf("fault %q: kind must be throttle or internal", part)
		}
		rate, err := strconv.ParseFloat(f[2], 64)
		if err != nil || !(rate > 0 && rate <= 1) {
			return nil, fmt.Errorf("fault %q: rate must be a number in (0, 1]", part)
		}
		out = append(out, Fault{Op: f[0], Kind: f[1], Rate: rate})
	}
	return out, nil
}

// dataOps answer throttling with ProvisionedThroughputExceededException.
var dataOps = map[string]bool{"PutRecord": true, "PutRecords": true, "GetRecords": true, "GetShardIterator": true, "SubscribeToShard": true}

// inject returns the injected failure for this call of op, or nil.
func (h *Handler) inject(op string) *apiError {
	for _, f := range h.opts.Faults {
		if f.Op != "*" && f.Op != op {
			continue
		}
		h.idMu.Lock()
		x := float64(h.ids.Uint64()>>11) / (1 << 53)
		h.idMu.Unlock()
		if x >= f.Rate {
			continue
		}
		if f.Kind == "internal" {
			return &apiError{Type: excInternalFailure, Message: "Injected fault (runnel serve --inject)", Status: http.StatusInternalServerError, injected: true}
		}
		if dataOps[op] {
			return newErr(excThroughputExceeded, "Rate exceeded for %s (injected fault, runnel serve --inject).", op)
		}
		return newErr(excLimitExceeded, "Rate exceeded for %s (injected fault, runnel serve --inject).", op)
	}
	return nil
}
