// Package kinesisconn turns the connection settings of a job's Kinesis
// source or sink (endpoint, region, named profile) into an AWS SDK
// Kinesis client, and says which API errors a retry can help.
//
// Credentials come from the AWS SDK's default chain (environment, shared
// files, SSO, web identity, container and instance roles) or from a named
// profile of the shared files; never from the job file.
package kinesisconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	"golang.org/x/net/http2"
)

// Conn names a Kinesis endpoint and the credentials to reach it.
type Conn struct {
	// Endpoint is the service URL: another Runnel (http://host:7070) or
	// any Kinesis-compatible endpoint; "" means AWS's endpoint for
	// Region.
	Endpoint string
	// Region is the AWS region; "" takes it from the default chain
	// (AWS_REGION, the profile's region).
	Region string
	// Profile names a profile of the shared AWS files; "" uses the
	// default chain.
	Profile string
}

// Validate checks the settings without contacting anything.
func (c *Conn) Validate() error {
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("endpoint %q: give an http:// or https:// URL", c.Endpoint)
		}
	}
	if strings.ContainsAny(c.Profile, " \t\n[]") {
		return fmt.Errorf("profile %q: not a profile name", c.Profile)
	}
	return nil
}

// Client loads the AWS configuration and returns a client without the
// SDK's own retries (callers retry, with backoff, what Retryable says).
// The client speaks HTTP/2 where the endpoint allows it (TLS with ALPN, or
// cleartext HTTP/2 to an http:// endpoint when h2c is set), which
// SubscribeToShard needs on AWS.
func (c *Conn) Client(ctx context.Context, h2c bool) (*kinesis.Client, error) {
	opts := []func(*config.LoadOptions) error{config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} })}
	if c.Region != "" {
		opts = append(opts, config.WithRegion(c.Region))
	}
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no region: give region in the job file or set AWS_REGION")
	}
	var hc *http.Client
	if h2c && strings.HasPrefix(c.Endpoint, "http://") {
		hc = &http.Client{Transport: &http2.Transport{AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			}}}
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ForceAttemptHTTP2 = true
		hc = &http.Client{Transport: t}
	}
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		o.HTTPClient = hc
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(strings.TrimRight(c.Endpoint, "/"))
		}
	}), nil
}

// Code is the API error code of err ("" when err is not an API error).
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Throttled reports whether err is Kinesis refusing a call for a limit:
// a retry after a pause succeeds.
func Throttled(err error) bool {
	switch Code(err) {
	case "ProvisionedThroughputExceededException", "LimitExceededException", "KMSThrottlingException",
		"ThrottlingException", "SlowDown":
		return true
	}
	return false
}

// Retryable reports whether a retry of the call can help: throttling,
// the service's internal errors, and failures to reach it at all (a
// network error, a server being restarted). Errors of the request itself
// (a missing stream, a refused credential, a bad argument) are not.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if Throttled(err) {
		return true
	}
	switch Code(err) {
	case "InternalFailure", "InternalFailureException", "ServiceUnavailable", "ServiceUnavailableException",
		"InternalServerError", "KMSInternalException":
		return true
	case "":
		// Not an API error: the endpoint was not reached, the connection
		// broke mid-answer, or a proxy refused the call. Only a 4xx
		// answer (but 429) says the request itself is wrong.
		var re interface{ HTTPStatusCode() int }
		if errors.As(err, &re) && re.HTTPStatusCode() >= 400 && re.HTTPStatusCode() < 500 {
			return re.HTTPStatusCode() == 429
		}
		return true
	}
	return false
}

// Denied reports whether err is Kinesis refusing the caller's credentials
// or their rights (by its code in either spelling AWS uses, or a bare 401
// or 403): no retry helps until they change.
func Denied(err error) bool {
	switch Code(err) {
	case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
		"ExpiredTokenException", "IncompleteSignature", "IncompleteSignatureException",
		"MissingAuthenticationToken", "MissingAuthenticationTokenException", "KMSAccessDeniedException":
		return true
	case "":
		var re interface{ HTTPStatusCode() int }
		return errors.As(err, &re) && (re.HTTPStatusCode() == 401 || re.HTTPStatusCode() == 403)
	}
	return false
}
