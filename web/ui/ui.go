// Package ui serves Runnel's web UI: the built front end in dist/ (made by
// `make ui` from src/ with esbuild, committed, and embedded here), so the
// binary carries its dashboard.
//
// Paths: GET / is index.html; everything else the page loads lives under
// /assets/ (the bundle, its lazily loaded chunks, the stylesheet and the
// favicon), and /favicon.ico answers for browsers that ask for it anyway.
// The page routes by URL fragment (#/jobs/ID), so no other path is needed.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed dist
var dist embed.FS

// AssetPrefix is the path under which Handler serves the bundle.
const AssetPrefix = "/assets/"

type asset struct {
	data  []byte
	ctype string
	etag  string
}

// Handler serves the embedded UI: "/" (and "/index.html"), AssetPrefix...
// and "/favicon.ico". Any other path is a 404.
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic("ui: embedded dist missing: " + err.Error())
	}
	h, err := HandlerFS(sub)
	if err != nil {
		panic("ui: " + err.Error())
	}
	return h
}

// HandlerFS serves a built UI from fsys (index.html at its root, assets/
// beside it), for development against `os.DirFS("web/ui/dist")`. The
// files are read once.
func HandlerFS(fsys fs.FS) (http.Handler, error) {
	files := map[string]*asset{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = http.DetectContentType(data)
		}
		sum := sha256.Sum256(data)
		files["/"+p] = &asset{data: data, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	index, ok := files["/index.html"]
	if !ok {
		return nil, fs.ErrNotExist
	}
	index.ctype = "text/html; charset=utf-8"
	if icon, ok := files[AssetPrefix+"favicon.svg"]; ok {
		files["/favicon.ico"] = icon
	}
	return &handler{files: files}, nil
}

type handler struct {
	files map[string]*asset
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if p == "/" {
		p = "/index.html"
	}
	a, ok := h.files[p]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.ctype)
	hd.Set("ETag", a.etag)
	hd.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(p, AssetPrefix+"chunk-") {
		// Chunk names carry a content hash.
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hd.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, p, time.Time{}, bytes.NewReader(a.data))
}
