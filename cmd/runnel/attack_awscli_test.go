package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestAWSCLISigV4 uses the AWS CLI (botocore, the signer boto3 uses too),
// unchanged, with keys from 'runnel tokens create --aws' against the real
// binary with --auth. It skips when the aws command is not installed
// (.ci/run installs Debian's awscli).
func TestAWSCLISigV4(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary; skipped in -short mode")
	}
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI is not installed")
	}
	data := t.TempDir()
	p := startServe(t, data, freeAddr(t), "--auth")
	out, e, code := runCLI(t, nil, "tokens", "create", "cli", "--role", "writer", "--aws", "--data", data)
	if code != 0 {
		t.Fatalf("tokens create: %s", e)
	}
	var id, secret string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "aws_access_key_id = "); ok {
			id = v
		}
		if v, ok := strings.CutPrefix(l, "aws_secret_access_key = "); ok {
			secret = v
		}
	}
	home := t.TempDir()
	aws := func(id, secret string, args ...string) (string, error) {
		cmd := exec.Command(awsBin, append([]string{"kinesis", "--endpoint-url", p.URL, "--region", "us-east-1", "--output", "json"}, args...)...)
		cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "AWS_ACCESS_KEY_ID=" + id, "AWS_SECRET_ACCESS_KEY=" + secret,
			"AWS_CONFIG_FILE=" + home + "/none", "AWS_SHARED_CREDENTIALS_FILE=" + home + "/none", "AWS_MAX_ATTEMPTS=1", "AWS_RETRY_MODE=standard"}
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	// The server notices the new token within a second; the CLI's first
	// call may come before.
	var lastOut string
	ok := false
	for i := 0; i < 20 && !ok; i++ {
		o, err := aws(id, secret, "create-stream", "--stream-name", "cli-s", "--shard-count", "1")
		lastOut = o
		ok = err == nil
	}
	if !ok {
		t.Fatalf("aws kinesis create-stream with good keys: %s", lastOut)
	}
	if o, err := aws(id, secret, "list-streams"); err != nil || !strings.Contains(o, "cli-s") {
		t.Fatalf("aws kinesis list-streams: %v %s", err, o)
	}
	if o, err := aws(id, strings.Repeat("x", 40), "list-streams"); err == nil || !strings.Contains(o, "InvalidSignatureException") {
		t.Fatalf("wrong secret: %v %s", err, o)
	}
	if o, err := aws("AKRNUNKNOWNKEY000000", secret, "list-streams"); err == nil || !strings.Contains(o, "UnrecognizedClientException") {
		t.Fatalf("unknown key: %v %s", err, o)
	}
	if o, err := aws(id, secret, "delete-stream", "--stream-name", "cli-s"); err == nil || !strings.Contains(o, "AccessDeniedException") {
		t.Fatalf("writer deletes a stream: %v %s", err, o)
	}
}
