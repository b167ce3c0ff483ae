//go:build deps

// Package deps pins the project's chosen dependencies in go.mod before every
// package that uses them exists. It is never built into the binary.
package deps

import (
	_ "github.com/apache/arrow-go/v18/arrow"
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/service/kinesis"
	_ "github.com/cockroachdb/pebble/v2"
	_ "github.com/dop251/goja"
	_ "github.com/fxamacker/cbor/v2"
	_ "github.com/google/uuid"
	_ "github.com/grafana/pyroscope-go"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/net/http2"
	_ "golang.org/x/sync/errgroup"
)
