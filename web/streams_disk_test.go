package web

import (
	"io"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/streams"
)

// TestStreamBytesAreOnDisk: a stream's "bytes" is what its shards keep on
// disk (the sizes of its segment files), the same after a restart, not
// the bytes appended since the server started; "size" humanises it.
func TestStreamBytesAreOnDisk(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	serve := func() (*httptest.Server, *streams.Store) {
		st, err := streams.Open(dir, streams.Options{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		return httptest.NewServer(New(Config{Store: st, Logger: log})), st
	}
	segBytes := func() int64 {
		var n int64
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".seg") && strings.Contains(p, "disk-in") {
				if fi, err := d.Info(); err == nil {
					n += fi.Size()
				}
			}
			return nil
		})
		return n
	}
	ts, st := serve()
	if code, m := call(t, ts, "POST", "/api/v1/streams", `{"name":"disk-in","shards":2}`); code != 201 {
		t.Fatalf("create: %d %v", code, m)
	}
	put := `{"records":[{"key":"a","json":{"page":"/a"}},{"key":"b","json":{"page":"/b"}},{"key":"c","data":"aGVsbG8="}]}`
	if code, m := call(t, ts, "POST", "/api/v1/streams/disk-in/records", put); code != 200 {
		t.Fatalf("put: %d %v", code, m)
	}
	check := func(when string) {
		t.Helper()
		want := segBytes()
		_, m := call(t, ts, "GET", "/api/v1/streams/disk-in", "")
		if got, _ := m["bytes"].(float64); want == 0 || int64(got) != want {
			t.Fatalf("%s: stream bytes %v, segment files hold %d", when, m["bytes"], want)
		}
		if s, _ := m["size"].(string); !strings.HasSuffix(s, "B") {
			t.Fatalf("%s: size %q", when, m["size"])
		}
		_, l := call(t, ts, "GET", "/api/v1/streams", "")
		for _, x := range l["streams"].([]any) {
			if s := x.(map[string]any); s["name"] == "disk-in" && int64(s["bytes"].(float64)) != want {
				t.Fatalf("%s: listed bytes %v, segment files hold %d", when, s["bytes"], want)
			}
		}
	}
	check("after a put")
	ts.Close()
	st.Close()
	ts, st = serve()
	defer func() { ts.Close(); st.Close() }()
	check("after a restart")
}
