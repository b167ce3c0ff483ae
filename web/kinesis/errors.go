package kinesis

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/runnel-dev/runnel/streams"
)

// Exception names, as AWS returns them in "__type".
const (
	excResourceNotFound    = "ResourceNotFoundException"
	excResourceInUse       = "ResourceInUseException"
	excInvalidArgument     = "InvalidArgumentException"
	excLimitExceeded       = "LimitExceededException"
	excExpiredIterator     = "ExpiredIteratorException"
	excExpiredNextToken    = "ExpiredNextTokenException"
	excThroughputExceeded  = "ProvisionedThroughputExceededException"
	excValidation          = "ValidationException"
	excSerialization       = "SerializationException"
	excUnknownOperation    = "UnknownOperationException"
	excMissingAuthToken    = "MissingAuthenticationTokenException"
	excIncompleteSignature = "IncompleteSignatureException"
	excInvalidSignature    = "InvalidSignatureException"
	excInternalFailure     = "InternalFailure"
	excAccessDenied        = "AccessDeniedException"
)

// apiError is an error the API returns to the client: an AWS exception
// name, its message and the HTTP status (400 for client errors, 500 for
// InternalFailure).
type apiError struct {
	Type    string
	Message string
	Status  int
	// capital renders the message under "Message" (as AWS does for
	// SerializationException) rather than "message".
	capital bool
	// injected marks a failure made on purpose by a Fault rule.
	injected bool
}

func (e *apiError) Error() string { return e.Type + ": " + e.Message }

// Retriable reports whether sending the same request again may succeed, as
// the SDKs decide.
func (e *apiError) Retriable() bool {
	return e.Status >= 500 || e.Type == excThroughputExceeded || e.Type == excLimitExceeded
}

func newErr(typ, format string, args ...any) *apiError {
	return &apiError{Type: typ, Message: fmt.Sprintf(format, args...), Status: http.StatusBadRequest}
}

func internalErr(err error) *apiError {
	return &apiError{Type: excInternalFailure, Message: err.Error(), Status: http.StatusInternalServerError}
}

func (h *Handler) notFound(stream string) *apiError {
	return newErr(excResourceNotFound, "Stream %s under account %s not found.", stream, h.opts.AccountID)
}

func (h *Handler) inUse(stream string) *apiError {
	return newErr(excResourceInUse, "Stream %s under account %s already exists.", stream, h.opts.AccountID)
}

func (h *Handler) notActive(stream, status string) *apiError {
	return newErr(excResourceInUse, "Stream %s under account %s not ACTIVE, instead in state %s", stream, h.opts.AccountID, status)
}

// validator collects AWS-style validation failures ("Value 'x' at
// 'field' failed to satisfy constraint: ...") and joins them the way AWS
// does.
type validator struct {
	msgs []string
	// recordCap is the largest record data the model admits.
	recordCap int
}

// addRaw notes a failure of a value AWS renders without further quoting.
func (v *validator) addRaw(rendered, field, constraint string) {
	v.addMsg("Value '" + rendered + "' at '" + field + "' failed to satisfy constraint: Member must " + constraint)
}

func (v *validator) addMsg(msg string) {
	v.msgs = append(v.msgs, msg)
}

func (v *validator) add(value any, field, constraint string) {
	var val string
	switch x := value.(type) {
	case nil:
		val = "null"
	case string:
		val = "'" + x + "'"
	default:
		val = fmt.Sprintf("'%v'", x)
	}
	v.msgs = append(v.msgs, fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: Member must %s", val, field, constraint))
}

// required notes a missing member.
func (v *validator) required(field string, present bool) bool {
	if !present {
		v.add(nil, field, "not be null")
	}
	return present
}

// length checks a string's length in characters (AWS counts UTF-16 units;
// for the ASCII names it validates the difference does not arise).
func (v *validator) length(field string, s *string, lo, hi int) {
	if s == nil {
		return
	}
	n := len([]rune(*s))
	if n < lo {
		v.add(*s, field, fmt.Sprintf("have length greater than or equal to %d", lo))
	}
	if n > hi {
		v.add(*s, field, fmt.Sprintf("have length less than or equal to %d", hi))
	}
}

func (v *validator) pattern(field string, s *string, ok func(string) bool, pat string) {
	if s != nil && *s != "" && !ok(*s) {
		v.add(*s, field, "satisfy regular expression pattern: "+pat)
	}
}

func (v *validator) rangeInt(field string, n *int64, lo, hi int64) {
	if n == nil {
		return
	}
	if *n < lo {
		v.add(*n, field, fmt.Sprintf("have value greater than or equal to %d", lo))
	}
	if *n > hi {
		v.add(*n, field, fmt.Sprintf("have value less than or equal to %d", hi))
	}
}

func (v *validator) enum(field string, s *string, allowed ...string) {
	if s == nil {
		return
	}
	for _, a := range allowed {
		if *s == a {
			return
		}
	}
	v.add(*s, field, "satisfy enum value set: ["+strings.Join(allowed, ", ")+"]")
}

// maxValidationMessages is how many failures AWS lists (and counts).
const maxValidationMessages = 10

// err returns the ValidationException for the failures so far, or nil.
// input decodes r's body into in, then runs check on it: the error is
// the body's that does not decode, or the problems check noted.
func input(r *request, in any, check func(v *validator)) error {
	if err := decode(r.codec, r.body, in); err != nil {
		return err
	}
	var v validator
	check(&v)
	return v.err()
}

func (v *validator) err() error {
	if len(v.msgs) > maxValidationMessages {
		v.msgs = v.msgs[:maxValidationMessages]
	}
	switch len(v.msgs) {
	case 0:
		return nil
	case 1:
		return newErr(excValidation, "1 validation error detected: %s", v.msgs[0])
	}
	return newErr(excValidation, "%d validation errors detected: %s", len(v.msgs), strings.Join(v.msgs, "; "))
}

// asAPIError turns any error into the one the client sees.
func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	return internalErr(err)
}

func isInvalid(err error) bool { return errors.Is(err, streams.ErrInvalid) }
