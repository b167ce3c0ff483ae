package interop

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testsrv"
	s3sink "github.com/runnel-dev/runnel/sinks/s3"
)

// TestRealClients runs the scripted sessions of interop/ — Debian's AWS CLI
// and boto3, and the JavaScript SDK v3 (interop/js, from npm), each
// covering every Kinesis operation it offers with its paginators and
// waiters (and SubscribeToShard where it offers it) — against the real
// binary over HTTP and over HTTPS (--tls-self-signed, the client trusting
// the printed certificate). .ci/run installs the clients.
func TestRealClients(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the AWS CLI and boto3 against runnel serve (minutes)")
	}
	for _, p := range []string{"/usr/bin/aws", "/usr/bin/python3"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: install Debian's awscli and python3-boto3 (see .ci/run)", p)
		}
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import boto3").Run(); err != nil {
		t.Fatal("boto3 is missing: install Debian's python3-boto3 (see .ci/run)")
	}
	root, _ := filepath.Abs("..")
	// The servers' Kinesis channels deliver to versitygw, a bucket each.
	gw := testsrv.StartS3(t, "lake-http", "lake-https")
	serve := func(data, scheme string, hc *http.Client, flags ...string) string {
		s := testbin.Start(t, testbin.Options{Data: data, Scheme: scheme, Client: hc, Env: gw.Env(),
			Flags: append(flags, "--channels-s3-endpoint", gw.Endpoint)})
		t.Cleanup(func() { s.Stop() })
		return s.URL
	}
	plain := serve(t.TempDir(), "http", http.DefaultClient)
	tlsData := t.TempDir()
	pool := x509.NewCertPool()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	secure := serve(tlsData, "https", &http.Client{Transport: &testbin.TrustOnRead{File: filepath.Join(tlsData, "tls-self-signed.pem"), Pool: pool, Next: tr}}, "--tls-self-signed")
	ca := filepath.Join(tlsData, "tls-self-signed.pem")
	bucket := map[string]string{plain: "lake-http", secure: "lake-https"}

	js := filepath.Join(root, "interop", "js")
	if _, err := os.Stat(filepath.Join(js, "node_modules", "@aws-sdk", "client-kinesis")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = js
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in interop/js: %v\n%s", err, out)
		}
	}

	type session struct{ name, endpoint string }
	var wg sync.WaitGroup
	for _, s := range []session{{"boto3", plain}, {"boto3", secure}, {"js", plain}, {"js", secure}, {"awscli", plain}, {"awscli", secure}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			script := filepath.Join(root, "interop", "boto3", "session.py")
			if s.name == "awscli" {
				script = filepath.Join(root, "interop", "awscli", "session.sh")
			}
			args := []string{s.endpoint}
			if strings.HasPrefix(s.endpoint, "https") && s.name != "js" {
				args = append(args, ca)
			}
			cmd := exec.Command(script, args...)
			if s.name == "js" {
				cmd = exec.Command("node", "--no-warnings", filepath.Join(js, "session.mjs"), s.endpoint)
				cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+ca, "RUNNEL_CHANNEL_BUCKET="+bucket[s.endpoint])
			}
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("%s session over %s: %v\n%s", s.name, s.endpoint, err, out)
				return
			}
			t.Logf("%s over %s (%s): %s", s.name, s.endpoint, time.Since(start).Round(time.Second), strings.TrimSpace(string(out)))
		}()
	}
	wg.Wait()

	// Each JS session's channel delivered its stream's five records, once.
	for _, b := range []string{"lake-http", "lake-https"} {
		var got []string
		for _, k := range gw.Objects(t, b, "") {
			if strings.HasPrefix(k, s3sink.DefaultStagingPrefix) {
				continue
			}
			rows, err := s3sink.ReadObject(k, gw.Get(t, b, k))
			if err != nil {
				t.Fatalf("bucket %s object %s: %v", b, k, err)
			}
			for _, r := range rows {
				got = append(got, fmt.Sprint(r["n"]))
			}
		}
		sort.Strings(got)
		if want := []string{"0", "1", "2", "3", "4"}; !slices.Equal(got, want) {
			t.Errorf("the JS session's channel delivered %v to bucket %s, want %v", got, b, want)
		}
	}
}
