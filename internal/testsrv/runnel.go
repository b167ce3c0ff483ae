package testsrv

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel-dev/runnel/internal/testbin"
)

// Runnel is a second `runnel serve` process on a free loopback port: the
// remote Kinesis endpoint of the Kinesis connector tests.
type Runnel struct {
	// URL is the server's base URL, the endpoint of a Kinesis client.
	URL string
	cmd *exec.Cmd
}

// StartRunnel runs `runnel serve` with extra flags (--inject, --streams)
// on a fresh data directory and returns once it listens; the test's
// cleanup kills it.
func StartRunnel(t testing.TB, flags ...string) *Runnel {
	t.Helper()
	return StartRunnelOn(t, t.TempDir(), flags...)
}

// StartRunnelOn is StartRunnel on the data directory dir (one prepared
// with `runnel tokens create --data DIR`, say).
func StartRunnelOn(t testing.TB, dir string, flags ...string) *Runnel {
	t.Helper()
	args := append([]string{"serve", "--data", dir, "--addr", "127.0.0.1:0", "--log-level", "info"}, flags...)
	cmd := exec.Command(testbin.Runnel(t), args...)
	logs, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	})
	// The server logs its address once it listens; the log is drained
	// until the process ends so that it never blocks on a full pipe.
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			line := sc.Text()
			if a, ok := logField(line, "msg=listening", "addr="); ok {
				addr <- a
				break
			}
		}
		close(addr)
		io.Copy(io.Discard, logs)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatal("runnel serve ended before it listened")
		}
		return &Runnel{URL: "http://" + a, cmd: cmd}
	case <-time.After(60 * time.Second):
		t.Fatal("runnel serve did not listen within 60s")
	}
	return nil
}

// logField returns the value of field in a slog text line holding marker.
func logField(line, marker, field string) (string, bool) {
	if !strings.Contains(line, marker) {
		return "", false
	}
	_, rest, ok := strings.Cut(line, " "+field)
	if !ok {
		return "", false
	}
	v, _, _ := strings.Cut(rest, " ")
	return v, true
}

// Client is an AWS SDK client of the server, without retries, signing
// with placeholder keys (the server runs without --auth on loopback).
func (r *Runnel) Client() *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(r.URL), Retryer: aws.NopRetryer{},
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
