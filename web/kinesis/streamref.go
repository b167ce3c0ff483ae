package kinesis

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/runnel-dev/runnel/streams"
)

// How a call names its stream (StreamName or StreamARN), and mapping the
// store's errors to the API's.

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

// streamInput decodes and validates the input of a call on one stream (its
// StreamName and StreamARN first, then check) and resolves the stream's
// name; ref is in's streamRef.
func (h *Handler) streamInput(r *request, in any, ref *streamRef, check func(v *validator)) (string, error) {
	if err := input(r, in, func(v *validator) {
		validateRef(v, *ref)
		check(v)
	}); err != nil {
		return "", err
	}
	return h.resolveValid(*ref)
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
