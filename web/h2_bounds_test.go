package web

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// selfSignedTLS is a server TLS config with a fresh certificate for
// 127.0.0.1.
func selfSignedTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// serveGuard runs ListenAndServeGuarded with g and h (over TLS when
// tlsCfg is set) until the test ends and returns its address.
func serveGuard(t *testing.T, g *Guard, h http.Handler, tlsCfg *tls.Config) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- ListenAndServeGuarded(ctx, "127.0.0.1:0", h, time.Second, func(a net.Addr) { addrc <- a.String() }, g, tlsCfg)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case a := <-addrc:
		return a
	case err := <-done:
		t.Fatalf("ListenAndServeGuarded: %v", err)
	}
	return ""
}

// h2Client is a raw HTTP/2 client connection: it sends exactly the frames
// a test asks for, whatever the server's SETTINGS say.
type h2Client struct {
	t    *testing.T
	c    net.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer
	// maxStreams is the server's SETTINGS_MAX_CONCURRENT_STREAMS.
	maxStreams uint32
	// answers get each stream's end: its status, or -1 for a reset; and
	// a GOAWAY as {its last stream id, -2}.
	answers chan [2]int
}

// dialH2 opens one HTTP/2 connection (h2 over TLS by ALPN, or h2c with
// prior knowledge), reads the server's SETTINGS and acknowledges them.
func dialH2(t *testing.T, addr string, useTLS bool) *h2Client {
	t.Helper()
	var c net.Conn
	var err error
	if useTLS {
		tc, terr := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
		if terr == nil && tc.ConnectionState().NegotiatedProtocol != "h2" {
			t.Fatalf("ALPN chose %q, want h2", tc.ConnectionState().NegotiatedProtocol)
		}
		c, err = tc, terr
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h := &h2Client{t: t, c: c, fr: http2.NewFramer(c, c), answers: make(chan [2]int, 1024)}
	h.enc = hpack.NewEncoder(&h.hbuf)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	// A large window, so that no stream waits for flow control.
	if err := h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	f, err := h.fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("the server's first frame is %T, want SETTINGS", f)
	}
	sf.ForeachSetting(func(s http2.Setting) error {
		if s.ID == http2.SettingMaxConcurrentStreams {
			h.maxStreams = s.Val
		}
		return nil
	})
	if err := h.fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	go h.read()
	return h
}

// read reports each stream's end on answers.
func (h *h2Client) read() {
	dec := hpack.NewDecoder(4096, nil)
	status := map[uint32]int{}
	ended := map[uint32]bool{}
	end := func(id uint32, st int) {
		// A reset after the answer (a body the handler left unread) is
		// not news.
		if !ended[id] {
			ended[id] = true
			h.answers <- [2]int{int(id), st}
		}
	}
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			close(h.answers)
			return
		}
		switch f := f.(type) {
		case *http2.HeadersFrame:
			fields, _ := dec.DecodeFull(f.HeaderBlockFragment())
			for _, hf := range fields {
				if hf.Name == ":status" {
					status[f.StreamID], _ = strconv.Atoi(hf.Value)
				}
			}
			if f.StreamEnded() {
				end(f.StreamID, status[f.StreamID])
			}
		case *http2.DataFrame:
			if f.StreamEnded() {
				end(f.StreamID, status[f.StreamID])
			}
		case *http2.RSTStreamFrame:
			end(f.StreamID, -1)
		case *http2.GoAwayFrame:
			h.answers <- [2]int{int(f.LastStreamID), -2}
		}
	}
}

// open starts stream id: a GET (no body) or, with length > 0, a POST that
// declares length bytes of body and sends none.
func (h *h2Client) open(id uint32, length int) {
	h.hbuf.Reset()
	method := "GET"
	if length > 0 {
		method = "POST"
	}
	for _, f := range [][2]string{{":method", method}, {":scheme", "http"}, {":path", "/"}, {":authority", "127.0.0.1"}} {
		_ = h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if length > 0 {
		_ = h.enc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(length)})
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.hbuf.Bytes(), EndHeaders: true, EndStream: length == 0}); err != nil {
		h.t.Fatal(err)
	}
}

// TestH2ConnectionBounded: one HTTP/2 connection, over TLS and over h2c,
// runs at most MaxConnStreams requests at once (it is the connection's
// SETTINGS_MAX_CONCURRENT_STREAMS; streams a client opens past it are
// reset, not run), and its streams' bodies together never hold more than
// MaxInFlight bytes: a stream whose declared body does not fit gets 503.
func TestH2ConnectionBounded(t *testing.T) {
	const maxStreams, body = 8, 64 << 10
	for _, useTLS := range []bool{false, true} {
		name := "h2c"
		if useTLS {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			var active, peak, peakBytes atomic.Int64
			release := make(chan struct{})
			g := NewGuard(Limits{MaxConnStreams: maxStreams, MaxInFlight: 4 * body, BodyTimeout: time.Minute}, quietLog)
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := active.Add(1)
				defer active.Add(-1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				for b, p := g.inflightBytes.Load(), peakBytes.Load(); b > p && !peakBytes.CompareAndSwap(p, b); p = peakBytes.Load() {
				}
				select {
				case <-release:
				case <-r.Context().Done():
				}
				w.WriteHeader(http.StatusNoContent)
			})
			var tlsCfg *tls.Config
			if useTLS {
				tlsCfg = selfSignedTLS(t)
			}
			addr := serveGuard(t, g, h, tlsCfg)
			c := dialH2(t, addr, useTLS)
			if c.maxStreams != maxStreams {
				t.Fatalf("SETTINGS_MAX_CONCURRENT_STREAMS %d, want %d", c.maxStreams, maxStreams)
			}

			// Three times as many GETs as the connection may run.
			id := uint32(1)
			for range 3 * maxStreams {
				c.open(id, 0)
				id += 2
			}
			resets := 0
			for resets < 2*maxStreams {
				a, ok := <-c.answers
				if !ok {
					t.Fatalf("the connection closed after %d resets", resets)
				}
				if a[1] != -1 {
					t.Fatalf("stream %d answered %d while its handlers were held", a[0], a[1])
				}
				resets++
			}
			waitActive(t, &active, maxStreams)
			close(release)
			for range maxStreams {
				if a := <-c.answers; a[1] != http.StatusNoContent {
					t.Fatalf("stream %d: %v, want 204", a[0], a[1])
				}
			}
			if p := peak.Load(); p != maxStreams {
				t.Errorf("%d handlers of one connection ran at once, want %d (MaxConnStreams)", p, maxStreams)
			}

			// As many POSTs as it may run, each declaring 64 KiB it does not
			// send: four fit in MaxInFlight, the others get 503.
			release = make(chan struct{})
			peak.Store(0)
			var ids []int
			for range maxStreams {
				c.open(id, body)
				ids = append(ids, int(id))
				id += 2
			}
			// A refusal says Connection: close, which over HTTP/2 is a
			// GOAWAY: streams past its last id were not processed (the
			// client sends them again on a new connection).
			for refused := 0; refused < maxStreams-4; {
				a, ok := <-c.answers
				switch {
				case !ok:
					t.Fatalf("the connection closed with %d streams refused", refused)
				case a[1] == http.StatusServiceUnavailable:
					refused++
				case a[1] == -2:
					for _, i := range ids {
						if i > a[0] {
							refused++
						}
					}
				default:
					t.Fatalf("stream %d past --max-inflight: %v, want 503", a[0], a[1])
				}
			}
			waitActive(t, &active, 4)
			if b := peakBytes.Load(); b > 4*body {
				t.Errorf("one connection's streams held %d body bytes, more than MaxInFlight %d", b, 4*body)
			}
			close(release)
		})
	}
}

func waitActive(t *testing.T, active *atomic.Int64, n int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for active.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d handlers under way, want %d", active.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
