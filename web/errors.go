package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/runnel-dev/runnel/streams"
)

// apiError is the REST error body. Codes are stable: scripts match on them.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	Line    int    `json:"line,omitempty"`
	// Problems lists every problem of an invalid job file.
	Problems any `json:"problems,omitempty"`
	// Limit names the flag of the limit a too_many_requests answer hit.
	Limit string `json:"limit,omitempty"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// The error codes and their HTTP statuses, in one table.
var errorStatus = map[string]int{
	"invalid_argument":       http.StatusBadRequest,
	"invalid_json":           http.StatusBadRequest,
	"not_found":              http.StatusNotFound,
	"already_exists":         http.StatusConflict,
	"not_active":             http.StatusConflict,
	"shard_closed":           http.StatusConflict,
	"body_too_large":         http.StatusRequestEntityTooLarge,
	"invalid_job":            http.StatusBadRequest,
	"incompatible_savepoint": http.StatusConflict,
	"not_running":            http.StatusConflict,
	"running":                http.StatusConflict,
	// A replace, deploy or delete of a job the server manages (a Kinesis
	// channel's delivery job).
	"managed": http.StatusConflict,
	// A request that does not apply to a job running on Kafka workers
	// (cluster_lifecycle.go).
	"cluster_job": http.StatusConflict,
	"internal":    http.StatusInternalServerError,
	"unavailable": http.StatusServiceUnavailable,
	// A caller past a cap on costly or long-lived requests (slots.go).
	"too_many_requests": http.StatusTooManyRequests,
	// Authentication, authorisation and the browser defences (security.go).
	"unauthenticated":        http.StatusUnauthorized,
	"forbidden":              http.StatusForbidden,
	"cross_site_request":     http.StatusForbidden,
	"unsupported_media_type": http.StatusUnsupportedMediaType,
	"host_not_allowed":       http.StatusMisdirectedRequest,
	"limit_exceeded":         http.StatusConflict,
	// A checkpoint or release from a worker that lost the lease (groups.go).
	"lease_lost": http.StatusConflict,
}

func newError(code, field, msg string) *apiError {
	st, ok := errorStatus[code]
	if !ok {
		st = http.StatusInternalServerError
	}
	return &apiError{Status: st, Code: code, Message: msg, Field: field}
}

// fromStreamsError maps a streams error onto the REST table.
func fromStreamsError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	field := ""
	var se *streams.Error
	if errors.As(err, &se) {
		field = se.Field
	}
	switch {
	case errors.Is(err, streams.ErrInvalid):
		return newError("invalid_argument", field, err.Error())
	case errors.Is(err, streams.ErrStreamNotFound), errors.Is(err, streams.ErrShardNotFound):
		return newError("not_found", field, err.Error())
	case errors.Is(err, streams.ErrStreamExists):
		return newError("already_exists", field, err.Error())
	case errors.Is(err, streams.ErrStreamNotActive):
		return newError("not_active", field, err.Error())
	case errors.Is(err, streams.ErrShardClosed):
		return newError("shard_closed", field, err.Error())
	case errors.Is(err, streams.ErrClosed):
		return newError("unavailable", "", "the server is shutting down")
	case errors.Is(err, streams.ErrUnavailable):
		return newError("unavailable", "", err.Error())
	case errors.Is(err, streams.ErrLimitExceeded):
		return newError("limit_exceeded", field, err.Error())
	}
	return newError("internal", "", err.Error())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"encode response"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, err error) {
	ae := fromStreamsError(err)
	if ae.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, ae.Status, map[string]*apiError{"error": ae})
}

// withHint adds what the body should be to decodeBody's error.
func withHint(err error, hint string) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return err
	}
	e := *ae
	e.Message += ": " + hint
	return &e
}

// decodeBody reads a JSON body of at most limit bytes into v, rejecting
// unknown fields and trailing data.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return newError("body_too_large", "", "request body exceeds "+humanBytes(limit))
		}
		if e := bodyReadError(err); e != nil {
			return e
		}
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return newError("invalid_json", ute.Field, "field "+ute.Field+" must be "+ute.Type.String()+", got JSON "+ute.Value)
		}
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			f = strings.Trim(f, `"`)
			return newError("invalid_json", f, "unknown field "+strconv.Quote(f)+" in the request body")
		}
		return newError("invalid_json", "", "request body is not valid JSON: "+err.Error())
	}
	if dec.More() {
		return newError("invalid_json", "", "request body has data after the JSON value")
	}
	return nil
}

// bodyReadError is the answer to a body that the guard cut off (Guard):
// past --max-inflight a retryable 503, as a request refused before its
// body is read gets; past --body-timeout a 400 saying so. nil for other
// errors.
func bodyReadError(err error) *apiError {
	switch {
	case errors.Is(err, errBodyBusy):
		return newError("unavailable", "", errBodyBusy.Error())
	case errors.Is(err, errBodyTimeout):
		return newError("invalid_argument", "", err.Error())
	}
	return nil
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
