package main

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/testbin"
)

// TestAttackSessionCookie signs in to the web UI of a real server with
// --auth, over HTTP and over HTTPS: the session cookie is HttpOnly and
// SameSite=Strict, Secure over HTTPS, and holds no part of the token; it
// works until signed out and not after; a state-changing request that a
// page on another site makes with it is refused.
func TestAttackSessionCookie(t *testing.T) {
	if testing.Short() {
		t.Skip("attack test skipped in -short mode")
	}
	for _, scheme := range []string{"http", "https"} {
		t.Run(scheme, func(t *testing.T) {
			data := t.TempDir()
			token := createToken(t, data, "ui", "--role", "admin")
			o := testbin.Options{Data: data, Scheme: scheme, Flags: []string{"--auth"}}
			if scheme == "https" {
				pool := x509.NewCertPool()
				o.Client = &http.Client{Transport: &testbin.TrustOnRead{File: filepath.Join(data, "tls-self-signed.pem"), Pool: pool,
					Next: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
				o.Flags = append(o.Flags, "--tls-self-signed")
			}
			srv := testbin.Start(t, o)
			create := srv.Request("POST", "/api/v1/streams", "application/json", strings.NewReader(`{"name":"s","shards":1}`))
			create.Header.Set("Authorization", "Bearer "+token)
			if st, _, b := srv.Send(create); st != 201 {
				t.Fatalf("create stream s: %d %s", st, b)
			}
			st, h, b := srv.Send(srv.Request("POST", "/api/v1/session", "application/json", strings.NewReader(`{"token":"`+token+`"}`)))
			if st != 200 {
				t.Fatalf("sign in: %d %s", st, b)
			}
			sc := h.Get("Set-Cookie")
			for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
				if !strings.Contains(sc, want) {
					t.Errorf("session cookie %q lacks %s", sc, want)
				}
			}
			if got := strings.Contains(sc, "; Secure"); got != (scheme == "https") {
				t.Errorf("session cookie %q over %s: Secure %v", sc, scheme, got)
			}
			if strings.Contains(sc, token) || strings.Contains(sc, strings.TrimPrefix(token, "rnl_")[:16]) {
				t.Errorf("session cookie %q holds the token", sc)
			}
			cookie := strings.SplitN(sc, ";", 2)[0]
			send := func(method, path string, hdr map[string]string) int {
				req := srv.Request(method, path, "application/json", nil)
				req.Header.Del("Authorization")
				req.Header.Set("Cookie", cookie)
				for k, v := range hdr {
					req.Header.Set(k, v)
				}
				st, _, _ := srv.Send(req)
				return st
			}
			if st := send("GET", "/api/v1/streams", nil); st != 200 {
				t.Errorf("GET with the session: %d", st)
			}
			if st := send("DELETE", "/api/v1/streams/s", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}); st != 403 {
				t.Errorf("cross-site DELETE with the session: %d, want 403", st)
			}
			if st := send("DELETE", "/api/v1/session", nil); st != 204 {
				t.Errorf("sign out: %d", st)
			}
			if st := send("GET", "/api/v1/streams", nil); st != 401 {
				t.Errorf("GET with the session after signing out: %d, want 401", st)
			}
		})
	}
}
