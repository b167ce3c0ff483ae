package ui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every file index.html references must be served, with the content type a
// browser needs to run it (a module script served as text/plain is refused).
func TestIndexAndEveryReferencedAsset(t *testing.T) {
	h := Handler()
	res := get(t, h, "GET", "/", nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	html := body(t, res)
	refs := regexp.MustCompile(`(?:src|href)="(/[^"]+)"`).FindAllStringSubmatch(html, -1)
	if len(refs) < 3 {
		t.Fatalf("index.html references %d local files, want the script, stylesheet and icon:\n%s", len(refs), html)
	}
	want := map[string]string{".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
	for _, m := range refs {
		p := m[1]
		if !strings.HasPrefix(p, AssetPrefix) {
			t.Errorf("index.html references %s outside %s", p, AssetPrefix)
		}
		res := get(t, h, "GET", p, nil)
		if res.StatusCode != 200 {
			t.Errorf("GET %s = %d", p, res.StatusCode)
			continue
		}
		ext := p[strings.LastIndex(p, "."):]
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, want[ext]) {
			t.Errorf("GET %s: Content-Type %q, want %s", p, ct, want[ext])
		}
	}
}

// The main bundle imports its chunks by relative path; each must resolve.
func TestChunksImportedByBundleAreServed(t *testing.T) {
	h := Handler()
	js := body(t, get(t, h, "GET", AssetPrefix+"main.js", nil))
	chunks := regexp.MustCompile(`"\./(chunk-[A-Z0-9]+\.js)"`).FindAllStringSubmatch(js, -1)
	if len(chunks) == 0 {
		t.Fatal("main.js imports no chunk; the editor should be split off")
	}
	for _, c := range chunks {
		if res := get(t, h, "GET", AssetPrefix+c[1], nil); res.StatusCode != 200 {
			t.Errorf("GET %s%s = %d", AssetPrefix, c[1], res.StatusCode)
		} else if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("chunk %s Cache-Control %q, want immutable", c[1], cc)
		}
	}
}

func TestFaviconIsServed(t *testing.T) {
	res := get(t, Handler(), "GET", "/favicon.ico", nil)
	if res.StatusCode != 200 || !strings.Contains(body(t, res), "<svg") {
		t.Fatalf("GET /favicon.ico = %d, want the SVG icon", res.StatusCode)
	}
}

func TestConditionalGetAndHead(t *testing.T) {
	h := Handler()
	res := get(t, h, "GET", "/", nil)
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on /")
	}
	if res := get(t, h, "GET", "/", map[string]string{"If-None-Match": etag}); res.StatusCode != http.StatusNotModified {
		t.Errorf("GET / If-None-Match = %d, want 304", res.StatusCode)
	}
	res = get(t, h, "HEAD", AssetPrefix+"main.js", nil)
	if res.StatusCode != 200 || body(t, res) != "" || res.Header.Get("Content-Length") == "" {
		t.Errorf("HEAD main.js = %d with a body or no length", res.StatusCode)
	}
}

func TestUnknownPathsAndMethods(t *testing.T) {
	h := Handler()
	for _, p := range []string{"/nope", "/assets/", "/assets/../index.html", "/dist/index.html", "/api/v1/jobs"} {
		if res := get(t, h, "GET", p, nil); res.StatusCode != 404 {
			t.Errorf("GET %s = %d, want 404", p, res.StatusCode)
		}
	}
	if res := get(t, h, "POST", "/", nil); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405", res.StatusCode)
	}
}

func TestHandlerFSNeedsIndex(t *testing.T) {
	if _, err := HandlerFS(fstest.MapFS{"assets/main.js": {Data: []byte("x")}}); err == nil {
		t.Fatal("HandlerFS without index.html: no error")
	}
	h, err := HandlerFS(fstest.MapFS{"index.html": {Data: []byte("<p>dev</p>")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, get(t, h, "GET", "/", nil)); got != "<p>dev</p>" {
		t.Fatalf("GET / = %q", got)
	}
}

// Every built file must be reachable: a stylesheet esbuild splits off for a
// lazily loaded chunk is not loaded by anything, and its styles go missing.
func TestEveryBuiltFileIsReferenced(t *testing.T) {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	names := []string{}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".html") || strings.HasSuffix(p, ".js") {
			all.Write(b)
		}
		names = append(names, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range names {
		if p == "index.html" {
			continue
		}
		base := p[strings.LastIndex(p, "/")+1:]
		if !strings.Contains(all.String(), base) {
			t.Errorf("dist/%s is referenced by no page or script", p)
		}
	}
}
