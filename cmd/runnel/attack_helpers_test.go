package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/runnel-dev/runnel/internal/testbin"
)

// limited is a runnel serve process started with extra flags, optionally
// under a shell-set open-file limit (NoFile).
type limited struct {
	*testbin.Server
	t *testing.T
}

func newLimited(t *testing.T, data string, args ...string) *limited {
	return &limited{testbin.New(t, testbin.Options{Data: data, LogLevel: "info", Flags: args}), t}
}

// do sends a JSON request and returns the status, headers and body.
func (s *limited) do(method, path string, body any) (int, http.Header, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	return s.Send(s.Request(method, path, "application/json", rd))
}

// kinesis sends a Kinesis API call and returns the status and body.
func (s *limited) kinesis(op string, body any) (int, []byte) {
	s.t.Helper()
	b, _ := json.Marshal(body)
	req := s.Request("POST", "/", "application/x-amz-json-1.1", bytes.NewReader(b))
	req.Header.Set("X-Amz-Target", "Kinesis_20131202."+op)
	sum := sha256.Sum256(b)
	creds := aws.Credentials{AccessKeyID: "AKIDATTACKTEST", SecretAccessKey: "attack-test-secret"}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", time.Now()); err != nil {
		s.t.Fatal(err)
	}
	st, _, out := s.Send(req)
	return st, out
}

// readAll reads every record of a stream over REST, shard by shard.
func (s *limited) readAll(name string) map[string]bool {
	s.t.Helper()
	st, _, b := s.do("GET", "/api/v1/streams/"+name, nil)
	if st != 200 {
		s.t.Fatalf("describe %s: %d %s", name, st, b)
	}
	var d struct {
		Shards []struct {
			ID string `json:"id"`
		} `json:"shards"`
	}
	json.Unmarshal(b, &d)
	got := map[string]bool{}
	for _, sh := range d.Shards {
		q := "from=trim_horizon"
		for {
			st, _, b := s.do("GET", fmt.Sprintf("/api/v1/streams/%s/records?shard=%s&%s&limit=10000", name, sh.ID, q), nil)
			if st != 200 {
				s.t.Fatalf("read %s/%s: %d %s", name, sh.ID, st, b)
			}
			var page struct {
				Records []struct {
					Data string `json:"data"`
				} `json:"records"`
				Next uint64 `json:"next_position"`
			}
			if err := json.Unmarshal(b, &page); err != nil {
				s.t.Fatalf("read %s/%s: %v: %s", name, sh.ID, err, b)
			}
			for _, r := range page.Records {
				got[r.Data] = true
			}
			if len(page.Records) == 0 {
				break
			}
			q = fmt.Sprintf("position=%d", page.Next)
		}
	}
	return got
}

// openFDs counts the server process's open file descriptors.
func (s *limited) openFDs() int {
	s.t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.Pid()))
	if err != nil {
		s.t.Fatal(err)
	}
	return len(ents)
}

// countLines counts the log lines containing substr.
func countLines(logs, substr string) int {
	n := 0
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}
