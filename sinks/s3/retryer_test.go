package s3

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// The client OpenState uses keeps the retryer the AWS configuration asks
// for; only NewClient's own outage retryer is replaced by the SDK's
// standard one there.
func TestOpeningClientKeepsConfiguredRetryer(t *testing.T) {
	for _, tc := range []struct {
		name, mode       string
		running, opening func(aws.Retryer) bool
	}{
		{name: "default", mode: "",
			running: func(r aws.Retryer) bool { _, ok := r.(outageRetryer); return ok },
			opening: func(r aws.Retryer) bool {
				s, ok := r.(*retry.Standard)
				return ok && s.MaxAttempts() == retry.DefaultMaxAttempts
			}},
		{name: "adaptive", mode: "adaptive",
			running: func(r aws.Retryer) bool { _, ok := r.(*retry.AdaptiveMode); return ok },
			opening: func(r aws.Retryer) bool { _, ok := r.(*retry.AdaptiveMode); return ok }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
			t.Setenv("AWS_ACCESS_KEY_ID", "id")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
			t.Setenv("AWS_MAX_ATTEMPTS", "")
			t.Setenv("AWS_RETRY_MODE", tc.mode)
			s, err := New(context.Background(), Config{Endpoint: "http://127.0.0.1:1", Region: "us-east-1", PathStyle: true,
				Bucket: bucket, Columns: windowCols, Job: "j", Sink: "out"})
			if err != nil {
				t.Fatal(err)
			}
			running := s.cl.Options().Retryer.(warnRetries).Retryer
			opening := s.opening.Options().Retryer.(warnRetries).Retryer
			if !tc.running(running) {
				t.Errorf("running client's retryer is a %T", running)
			}
			if !tc.opening(opening) {
				t.Errorf("opening client's retryer is a %T", opening)
			}
		})
	}
}
