// Package streamstest opens stream stores for the tests and benchmarks of
// the packages above streams, as net/http/httptest starts servers. Only
// tests import it.
package streamstest

import (
	"testing"

	"github.com/runnel-dev/runnel/streams"
)

// Open opens a store with opts in a fresh temporary directory of tb and
// creates stream in it with shards shards; the store closes when tb ends.
func Open(tb testing.TB, opts streams.Options, stream string, shards int) *streams.Store {
	tb.Helper()
	store, err := streams.Open(tb.TempDir(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	if _, err := store.CreateStream(stream, shards, streams.CreateOptions{}); err != nil {
		tb.Fatal(err)
	}
	return store
}
