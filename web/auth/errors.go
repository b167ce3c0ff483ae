package auth

import "errors"

// ErrBadCredentials is a bearer token (or session) that is malformed or
// unknown.
var ErrBadCredentials = errors.New("auth: bad credentials")

// AWS exception types for SigV4 failures, as AWS names them.
const (
	ExcUnrecognizedClient  = "UnrecognizedClientException"
	ExcInvalidSignature    = "InvalidSignatureException"
	ExcIncompleteSignature = "IncompleteSignatureException"
	ExcMissingAuthToken    = "MissingAuthenticationTokenException"
	ExcAccessDenied        = "AccessDeniedException"
)

// AWSError is a SigV4 failure with AWS's exception type and message.
type AWSError struct {
	Type    string
	Message string
}

func (e *AWSError) Error() string { return e.Type + ": " + e.Message }

func incomplete(msg string) *AWSError { return &AWSError{Type: ExcIncompleteSignature, Message: msg} }
