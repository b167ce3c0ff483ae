package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/runnel-dev/runnel/internal/kinesisbench"
	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/web"
	"github.com/runnel-dev/runnel/web/auth"
)

// benchKinesisAuth is runnel bench ingest's --kinesis-auth: "", on or off.
var benchKinesisAuth string

// benchAuthConfig makes a writer token with AWS keys for the benchmark
// clients when --kinesis-auth is set.
func benchAuthConfig(cfg *kinesisbench.BenchConfig, dir string) error {
	switch benchKinesisAuth {
	case "":
		return nil
	case "on", "off":
	default:
		return fmt.Errorf("%w: --kinesis-auth must be on or off", errUsage)
	}
	authDir, err := os.MkdirTemp(dir, "runnel-bench-auth-")
	if err != nil {
		return err
	}
	st, err := auth.Open(authDir)
	if err != nil {
		return err
	}
	c, err := st.Create("bench", auth.Writer, nil, true)
	if err != nil {
		return err
	}
	cfg.Auth, cfg.AuthDir = benchKinesisAuth, authDir
	cfg.Credentials = &aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey}
	return nil
}

// benchWrapAuth serves the Kinesis handler through the web server, as
// runnel serve does, with authentication on or off.
func benchWrapAuth(h http.Handler, store *streams.Store, on bool, authDir string) (http.Handler, error) {
	st, err := auth.Open(authDir)
	if err != nil {
		return nil, err
	}
	return web.New(web.Config{Store: store, Kinesis: h, Security: web.Security{Auth: on, Tokens: st}}), nil
}
