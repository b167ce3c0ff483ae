package kinesis

import (
	"net/http"
	"strconv"
)

// WriteThrottled answers a Kinesis API request that the server refuses
// before decoding it (too many connections, too many request bytes in
// flight) the way AWS answers an overloaded caller: a
// ProvisionedThroughputExceededException, which the SDKs, the KPL and the
// KCL retry with backoff. retryAfter (seconds, > 0) is also sent as
// Retry-After.
func WriteThrottled(w http.ResponseWriter, hr *http.Request, retryAfter int, msg string) {
	c, _ := requestCodec(hr.Header.Get("Content-Type"))
	e := newErr(excThroughputExceeded, "%s", msg)
	hd := w.Header()
	hd.Set("Content-Type", c.contentType())
	hd.Set("X-Amzn-ErrorType", e.Type)
	if retryAfter > 0 {
		hd.Set("Retry-After", strconv.Itoa(retryAfter))
	}
	b := errorBody(c, e)
	hd.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.Status)
	w.Write(b)
}

// IsAPIRequest reports whether a request is for the Kinesis API (POST /
// with X-Amz-Target), so that a refusal can take its error shape.
func IsAPIRequest(hr *http.Request) bool {
	return hr.Method == http.MethodPost && hr.URL.Path == "/" && hr.Header.Get("X-Amz-Target") != ""
}
