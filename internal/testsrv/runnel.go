package testsrv

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel-dev/runnel/internal/testbin"
)

// Runnel is a second `runnel serve` process on a free loopback port: the
// remote Kinesis endpoint of the Kinesis connector tests. Its URL is the
// endpoint of a Kinesis client.
type Runnel struct{ *testbin.Server }

// StartRunnel runs `runnel serve` with extra flags (--inject, --streams)
// on a fresh data directory and returns once it is healthy; the test's
// cleanup kills it.
func StartRunnel(t testing.TB, flags ...string) *Runnel {
	t.Helper()
	return StartRunnelOn(t, t.TempDir(), flags...)
}

// StartRunnelOn is StartRunnel on the data directory dir (one prepared
// with `runnel tokens create --data DIR`, say).
func StartRunnelOn(t testing.TB, dir string, flags ...string) *Runnel {
	t.Helper()
	return &Runnel{testbin.Start(t, testbin.Options{Data: dir, LogLevel: "info", Flags: flags})}
}

// Client is an AWS SDK client of the server (KinesisClient).
func (r *Runnel) Client() *kinesis.Client { return KinesisClient(r.URL) }

// KinesisClient is an AWS SDK Kinesis client of a test endpoint (a
// runnel serve without --auth, kinesis-local), without retries, signing
// with placeholder keys.
func KinesisClient(endpoint string) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), Retryer: aws.NopRetryer{},
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "runnel-test", SecretAccessKey: "runnel-test"}, nil
		}),
	})
}

// AWSTestKeys gives the test process (and the servers it starts) the
// placeholder keys a server without --auth accepts, through the AWS
// default chain's environment variables, with no shared files and no
// instance metadata to fall back on.
func AWSTestKeys(t testing.TB) {
	t.Setenv("AWS_ACCESS_KEY_ID", "runnel-test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "runnel-test")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}
