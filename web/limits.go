package web

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/runnel-dev/runnel/web/kinesis"
	"golang.org/x/sync/semaphore"
)

// Limits bound what clients can make the server hold: connections, request
// body bytes, and the time a body may take to arrive. Past them a request
// is refused at once — 503 with Retry-After, or for the Kinesis API a
// ProvisionedThroughputExceededException, which its clients retry with
// backoff — instead of the server growing without bound.
type Limits struct {
	// MaxConns caps open client connections (default 1024). Connections
	// beyond it are answered and closed: /healthz and /metrics still
	// answer, every other request gets 503.
	MaxConns int
	// MaxInFlight caps the request body bytes held by requests under way
	// (default 256 MiB). A request's declared length (up to MaxBody) is
	// reserved before its handler runs, a body of unknown length is
	// counted as it arrives.
	MaxInFlight int64
	// MaxBody is the most a single request can reserve: the largest body
	// any endpoint accepts (default 16 MiB); endpoints refuse larger ones
	// themselves with 413.
	MaxBody int64
	// BodyTimeout is the longest a request body may take to arrive
	// (default 30 s); a slower body fails the request and frees its bytes.
	BodyTimeout time.Duration
	// RetryAfter is what refusals advise clients to wait (default 1 s).
	RetryAfter time.Duration
	// MaxHeaderBytes caps a request's header (default 64 KiB; net/http
	// allows 4 KiB more): a larger one gets 431. Headers are held in memory
	// while they arrive, so with MaxConns connections sending them this
	// bounds what headers can make the server hold.
	MaxHeaderBytes int
	// WriteTimeout is the longest one write of an answer may wait for the
	// client to take it (default 2 min): a client that stops reading ends
	// the request (its handler's writes fail) instead of holding the
	// handler and the connection for ever. Each write and flush gets the
	// whole time again, so a long stream that the client keeps reading is
	// not cut.
	WriteTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection (HTTP/1.1, or
	// HTTP/2 without a stream open) may sit idle before the server closes
	// it (default 2 min).
	IdleTimeout time.Duration
	// MaxConnStreams caps the requests (streams) one HTTP/2 connection
	// runs at once (default 100; Go's own default is 250). It is the
	// connection's SETTINGS_MAX_CONCURRENT_STREAMS: a stream past it is
	// refused (RST_STREAM), and a client that opens and resets streams
	// faster than they run still gets no more handlers at once. So one
	// HTTP/2 connection holds at most this many requests, where an
	// HTTP/1.1 one holds one; MaxInFlight bounds their bodies together.
	MaxConnStreams int
	// MaxPreviews caps the job previews running at once (default 4), each
	// of which runs a job graph for up to jobs.PreviewTimeout; one token
	// may run half of them. Past it a preview gets 429.
	MaxPreviews int
	// MaxLiveResults caps the live result streams open at once (default
	// 256), each a dashboard subscription held as long as its client
	// reads; one token may hold half of them. Past it one gets 429.
	MaxLiveResults int
}

// Default limits.
const (
	DefaultMaxConns     = 1024
	DefaultMaxInFlight  = 256 << 20
	DefaultMaxBody      = 16 << 20
	DefaultBodyTimeout  = 30 * time.Second
	DefaultIdleTimeout  = 2 * time.Minute
	DefaultWriteTimeout = 2 * time.Minute
	// DefaultMaxHeaderBytes is Limits.MaxHeaderBytes' default.
	DefaultMaxHeaderBytes = 64 << 10
	DefaultMaxConnStreams = 100
	DefaultMaxPreviews    = 4
	DefaultMaxLiveResults = 256
)

// EnsureDefaults fills unset limits with the defaults.
func (l *Limits) EnsureDefaults() {
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = DefaultMaxInFlight
	}
	if l.MaxBody <= 0 {
		l.MaxBody = DefaultMaxBody
	}
	l.MaxBody = min(l.MaxBody, l.MaxInFlight)
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
	if l.RetryAfter <= 0 {
		l.RetryAfter = time.Second
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultWriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.MaxConnStreams <= 0 {
		l.MaxConnStreams = DefaultMaxConnStreams
	}
	if l.MaxPreviews <= 0 {
		l.MaxPreviews = DefaultMaxPreviews
	}
	if l.MaxLiveResults <= 0 {
		l.MaxLiveResults = DefaultMaxLiveResults
	}
}

// Guard enforces Limits on a listener and a handler.
type Guard struct {
	lim      Limits
	log      *slog.Logger
	inflight *semaphore.Weighted
	// overflow bounds the goroutines answering connections past the cap.
	overflow chan struct{}

	conns, inflightBytes                  atomic.Int64
	refusedConns, refusedBytes, timeouts  atomic.Int64
	acceptErrors                          atomic.Int64
	metricConns, metricBytes, metricRefus *prometheus.Desc
	metricTimeouts, metricAccept          *prometheus.Desc
}

// NewGuard makes a Guard for lim (defaults filled in).
func NewGuard(lim Limits, log *slog.Logger) *Guard {
	lim.EnsureDefaults()
	if log == nil {
		log = slog.Default()
	}
	return &Guard{lim: lim, log: log, inflight: semaphore.NewWeighted(lim.MaxInFlight),
		overflow:       make(chan struct{}, 64),
		metricConns:    prometheus.NewDesc("runnel_http_connections", "Open client connections (capped by --max-conns).", nil, nil),
		metricBytes:    prometheus.NewDesc("runnel_http_inflight_bytes", "Request body bytes held by requests under way (capped by --max-inflight).", nil, nil),
		metricRefus:    prometheus.NewDesc("runnel_http_refused_total", "Requests and connections refused by a limit, by reason.", []string{"reason"}, nil),
		metricTimeouts: prometheus.NewDesc("runnel_http_body_timeouts_total", "Request bodies that did not arrive within --body-timeout.", nil, nil),
		metricAccept:   prometheus.NewDesc("runnel_http_accept_errors_total", "Failed accepts (such as too many open files); the server backs off after one, or answers a waiting connection 503 with a descriptor it keeps in reserve.", nil, nil),
	}
}

// Limits returns the limits in force.
func (g *Guard) Limits() Limits { return g.lim }

func (g *Guard) retryAfter() int { return max(1, int((g.lim.RetryAfter+time.Second-1)/time.Second)) }

// refuse answers a request refused by a limit.
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, msg string) {
	if kinesis.IsAPIRequest(r) {
		kinesis.WriteThrottled(w, r, g.retryAfter(), msg)
		return
	}
	w.Header().Set("Retry-After", strconv.Itoa(g.retryAfter()))
	w.Header().Set("Connection", "close")
	writeJSON(w, http.StatusServiceUnavailable, map[string]*apiError{"error": newError("unavailable", "", msg)})
}

// Wrap bounds the request bytes in flight, the time bodies take, and the
// time a client may leave the answer untaken (stallWriter).
func (g *Guard) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w := &stallWriter{ResponseWriter: rw, ctl: http.NewResponseController(rw), d: g.lim.WriteTimeout, ok: true}
		// No deadline while the handler works before its first write (an
		// HTTP/2 stream's deadline would reset the stream even with
		// nothing to write), nor one left from the connection's last
		// request; what the handler leaves unwritten is written after it
		// returns, under a deadline from then.
		w.disarm()
		defer w.arm()
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			h.ServeHTTP(w, r)
			return
		}
		reserve := r.ContentLength
		if reserve < 0 {
			reserve = 64 << 10 // unknown length: counted as it arrives
		}
		reserve = min(reserve, g.lim.MaxBody)
		if !g.inflight.TryAcquire(reserve) {
			g.refusedBytes.Add(1)
			g.refuse(w, r, fmt.Sprintf("the server is busy: request bodies under way hold its limit of %s (--max-inflight); retry later", humanBytes(g.lim.MaxInFlight)))
			return
		}
		g.inflightBytes.Add(reserve)
		b := &guardBody{rc: r.Body, g: g, ctl: w.ctl, held: reserve}
		defer b.release()
		// The deadline covers the whole body; it is lifted once the body
		// has been read, so that a long answer is not cut.
		if err := b.ctl.SetReadDeadline(time.Now().Add(g.lim.BodyTimeout)); err == nil {
			b.deadline = true
		}
		r.Body = b
		h.ServeHTTP(w, r)
	})
}

// stallWriter sets the connection's write deadline (the stream's, over
// HTTP/2) to WriteTimeout from now before each write and flush of an
// answer.
type stallWriter struct {
	http.ResponseWriter
	ctl *http.ResponseController
	d   time.Duration
	ok  bool // false once the connection took no deadline
}

func (w *stallWriter) arm() {
	if w.ok && w.ctl.SetWriteDeadline(time.Now().Add(w.d)) != nil {
		w.ok = false
	}
}

func (w *stallWriter) disarm() {
	if w.ok && w.ctl.SetWriteDeadline(time.Time{}) != nil {
		w.ok = false
	}
}

func (w *stallWriter) WriteHeader(code int) {
	w.arm()
	w.ResponseWriter.WriteHeader(code)
}

func (w *stallWriter) Write(p []byte) (int, error) {
	w.arm()
	return w.ResponseWriter.Write(p)
}

// Flush flushes the answer (handlers that stream find http.Flusher).
func (w *stallWriter) Flush() {
	w.arm()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// errBodyTimeout and errBodyBusy end a body read.
var (
	errBodyTimeout = errors.New("the request body did not arrive in time (--body-timeout)")
	errBodyBusy    = bodyBusy{}
)

// bodyBusy is errBodyBusy; its Throttled method lets the Kinesis handler,
// which reads its own bodies, answer it as throttling.
type bodyBusy struct{}

func (bodyBusy) Error() string {
	return "the server is busy: too many request bytes in flight (--max-inflight); retry later"
}

func (bodyBusy) Throttled() bool { return true }

// guardBody counts a request body against the bytes in flight and lifts
// the read deadline at its end.
type guardBody struct {
	rc       io.ReadCloser
	g        *Guard
	ctl      *http.ResponseController
	deadline bool
	read     int64
	mu       sync.Mutex
	held     int64
}

func (b *guardBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.read += int64(n)
	b.mu.Lock()
	need := b.read - b.held
	b.mu.Unlock()
	if need > 0 {
		more := max(need, 64<<10)
		if !b.g.inflight.TryAcquire(more) {
			b.g.refusedBytes.Add(1)
			return n, errBodyBusy
		}
		b.g.inflightBytes.Add(more)
		b.mu.Lock()
		b.held += more
		b.mu.Unlock()
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			b.g.timeouts.Add(1)
			return n, fmt.Errorf("%w: %w", errBodyTimeout, err)
		}
		if err == io.EOF && b.deadline {
			b.deadline = false
			_ = b.ctl.SetReadDeadline(time.Time{})
		}
	}
	return n, err
}

func (b *guardBody) Close() error { return b.rc.Close() }

func (b *guardBody) release() {
	b.mu.Lock()
	held := b.held
	b.held = 0
	b.mu.Unlock()
	if held > 0 {
		b.g.inflightBytes.Add(-held)
		b.g.inflight.Release(held)
	}
}

// Listener caps the connections accepted from ln and backs off when
// accepting fails (out of file descriptors) instead of spinning.
// Connections past the cap are answered by answerOverCap with h (for
// /healthz and /metrics) or a refusal, and closed.
func (g *Guard) Listener(ln net.Listener, h http.Handler) net.Listener {
	l := &guardListener{Listener: ln, g: g, h: h}
	l.takeReserve()
	return l
}

type guardListener struct {
	net.Listener
	g *Guard
	h http.Handler
	// reserve is a descriptor held for accepting when there are none
	// left (accept_reserve.go); closed once the listener is.
	mu      sync.Mutex
	reserve *os.File
	closed  bool
}

const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

func (l *guardListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		counted := false // err is a failed accept counted already
		if err != nil && outOfFiles(err) {
			l.g.acceptErrors.Add(1)
			var shed bool
			if c, shed, err = l.acceptWithReserve(); shed {
				if backoff == 0 {
					backoff = minAcceptBackoff
					l.g.log.Error("out of file descriptors: connections are answered 503 until some are freed (raise the open-file limit, or lower --max-conns or --max-open-files)")
				}
				continue // the next waiting connection, at once
			} else if c == nil && err == nil {
				err, counted = syscall.EMFILE, true // no reserve held: back off
			}
		}
		if err != nil {
			if !acceptRetriable(err) {
				return nil, err
			}
			if !counted {
				l.g.acceptErrors.Add(1)
			}
			if backoff == 0 {
				backoff = minAcceptBackoff
				l.g.log.Error("accepting connections failed; backing off until it works again (raise the open-file limit, or lower --max-conns or --max-open-files)", "err", err)
			} else {
				backoff = min(2*backoff, maxAcceptBackoff)
			}
			time.Sleep(backoff)
			continue
		}
		if backoff != 0 {
			l.g.log.Info("accepting connections again")
			backoff = 0
		}
		if l.g.conns.Add(1) > int64(l.g.lim.MaxConns) {
			l.g.conns.Add(-1)
			l.g.refusedConns.Add(1)
			l.g.answerOverCap(c, l.h)
			continue
		}
		return &guardConn{Conn: c, g: l.g}, nil
	}
}

// acceptRetriable: errors after which accepting again later can work.
func acceptRetriable(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) ||
		errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EINTR)
}

type guardConn struct {
	net.Conn
	g    *Guard
	once sync.Once
}

func (c *guardConn) Close() error {
	c.once.Do(func() { c.g.conns.Add(-1) })
	return c.Conn.Close()
}

// busyResponse is what a connection past the cap gets when its request
// cannot even be read.
var busyResponse = func() string {
	body := `{"error":{"code":"unavailable","message":"too many connections to the server; retry later"}}` + "\n"
	return "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
}()

// answerOverCap answers one request on a connection past the cap and
// closes it, in a goroutine of a bounded set; when all are busy the
// connection gets a canned 503 at once.
func (g *Guard) answerOverCap(c net.Conn, h http.Handler) {
	select {
	case g.overflow <- struct{}{}:
	default:
		_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = io.WriteString(c, busyResponse)
		c.Close()
		return
	}
	go func() {
		defer func() { <-g.overflow }()
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		// The header is read within MaxHeaderBytes, as the server reads
		// one: unbounded, 64 connections past the cap could each make the
		// server hold what arrives in 2 s.
		req, err := http.ReadRequest(bufio.NewReaderSize(io.LimitReader(c, int64(g.lim.MaxHeaderBytes)+4096), 4096))
		if err != nil {
			_, _ = io.WriteString(c, busyResponse)
			return
		}
		rw := &rawResponse{header: http.Header{}, status: http.StatusOK}
		if req.Method == http.MethodGet && (req.URL.Path == "/healthz" || req.URL.Path == "/readyz" || req.URL.Path == "/metrics") && h != nil {
			req.Body = http.NoBody
			h.ServeHTTP(rw, req)
		} else {
			g.refuse(rw, req, fmt.Sprintf("too many connections to the server (its limit is %d, --max-conns); retry later", g.lim.MaxConns))
		}
		rw.writeTo(c)
	}()
}

// rawResponse collects a response for a connection served outside the
// http.Server.
type rawResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *rawResponse) Header() http.Header         { return r.header }
func (r *rawResponse) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *rawResponse) WriteHeader(status int)      { r.status = status }

func (r *rawResponse) writeTo(w io.Writer) {
	r.header.Set("Connection", "close")
	r.header.Set("Content-Length", strconv.Itoa(r.body.Len()))
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", r.status, http.StatusText(r.status))
	_ = r.header.Write(&b)
	b.WriteString("\r\n")
	b.Write(r.body.Bytes())
	_, _ = w.Write(b.Bytes())
}

// Describe and Collect export the guard's figures to Prometheus.
func (g *Guard) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.metricConns, g.metricBytes, g.metricRefus, g.metricTimeouts, g.metricAccept} {
		ch <- d
	}
}

func (g *Guard) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(g.metricConns, prometheus.GaugeValue, float64(g.conns.Load()))
	ch <- prometheus.MustNewConstMetric(g.metricBytes, prometheus.GaugeValue, float64(g.inflightBytes.Load()))
	ch <- prometheus.MustNewConstMetric(g.metricRefus, prometheus.CounterValue, float64(g.refusedConns.Load()), "connections")
	ch <- prometheus.MustNewConstMetric(g.metricRefus, prometheus.CounterValue, float64(g.refusedBytes.Load()), "inflight_bytes")
	ch <- prometheus.MustNewConstMetric(g.metricTimeouts, prometheus.CounterValue, float64(g.timeouts.Load()))
	ch <- prometheus.MustNewConstMetric(g.metricAccept, prometheus.CounterValue, float64(g.acceptErrors.Load()))
}
