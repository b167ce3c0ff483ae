package kinesisbench

import (
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/runnel-dev/runnel/streams"
)

// BenchWrap, when set (by the runnel binary, which can import the web
// server), puts the API handler behind the web server with authentication
// on or off and tokens in authDir, for BenchConfig.Auth. This package
// cannot import web, which imports it.
var BenchWrap func(h http.Handler, store *streams.Store, auth bool, authDir string) (http.Handler, error)

// benchCreds sign the benchmark clients' requests.
var benchCreds = aws.Credentials{AccessKeyID: "AKIDBENCH", SecretAccessKey: "bench"}
