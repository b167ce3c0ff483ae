package web

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/runnel-dev/runnel/consumergroups"
	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/web/auth"
	"github.com/runnel-dev/runnel/web/ui"
)

// Config is what a Server serves.
type Config struct {
	Store  *streams.Store
	Logger *slog.Logger
	// Kinesis, when set, answers every POST / request (AWS answers one
	// without a known X-Amz-Target with UnknownOperationException).
	Kinesis http.Handler
	// Jobs, when set, serves the jobs API.
	Jobs *jobs.Manager
	// Security configures authentication and the browser defences (see
	// security.go); the zero value is auth off, defences on.
	Security Security
	// Guard, when set, has its figures exported with the metrics, and its
	// Limits' caps on previews and live results apply (otherwise those of
	// Limits, defaults filled in).
	Guard  *Guard
	Limits Limits
	// Groups, when set, serves the consumer groups API (groups.go).
	Groups *consumergroups.Manager
	// Cluster, when set, runs jobs with a Kafka source on the cluster
	// (cluster.go); ClusterMetrics are its workers' figures.
	Cluster        ClusterJobs
	ClusterMetrics prometheus.Collector
}

// Server is Runnel's HTTP front door.
type Server struct {
	store   *streams.Store
	log     *slog.Logger
	kinesis http.Handler
	jobs    *jobs.Manager
	groups  *consumergroups.Manager
	cluster ClusterJobs
	mux     *routeMux
	reg     *prometheus.Registry
	// sec, sessions and refusals: see security.go.
	sec      Security
	sessions *auth.Sessions
	refusals *prometheus.CounterVec
	// previews and live cap the previews and live result streams under
	// way (slots.go).
	previews, live *slots
}

// maxScrapes is how many /metrics scrapes run at once; more get 503. A
// scrape walks every shard and job, so concurrent scrapes (a reader can
// send them) would multiply that work without bound.
const maxScrapes = 4

// New builds the handler tree.
func New(cfg Config) *Server {
	s := &Server{store: cfg.Store, log: cfg.Logger, kinesis: cfg.Kinesis, jobs: cfg.Jobs, groups: cfg.Groups, cluster: cfg.Cluster, reg: prometheus.NewRegistry(),
		sec: cfg.Security, refusals: newRefusals()}
	s.mux = &routeMux{ServeMux: http.NewServeMux(), wrap: s.authorize}
	if s.sec.Auth && s.sec.Tokens == nil {
		panic("web: Security.Auth needs Security.Tokens")
	}
	if s.sec.Tokens != nil {
		s.sessions = auth.NewSessions(s.sec.Tokens)
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	lim := cfg.Limits
	if cfg.Guard != nil {
		lim = cfg.Guard.Limits()
	}
	lim.EnsureDefaults()
	s.previews = newSlots("previews", "--max-previews", lim.MaxPreviews)
	s.live = newSlots("live results", "--max-live-results", lim.MaxLiveResults)
	s.reg.MustRegister(newSlotsCollector(s.previews, s.live))
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), s.refusals)
	if cfg.Store != nil {
		s.reg.MustRegister(newCollector(cfg.Store, cfg.Jobs), newStoreHealthCollector(cfg.Store))
	}
	if cfg.Guard != nil {
		s.reg.MustRegister(cfg.Guard)
	}
	if cfg.Groups != nil {
		s.reg.MustRegister(groupsCollector{cfg.Groups})
	}
	if cfg.ClusterMetrics != nil {
		s.reg.MustRegister(cfg.ClusterMetrics)
	}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{MaxRequestsInFlight: maxScrapes}))
	s.routeStreams(s.mux)
	s.routeJobs(s.mux)
	s.routeGroups(s.mux)
	s.routeCluster(s.mux)
	s.routeSession(s.mux)
	s.mux.HandleFunc("POST /{$}", s.kinesisOrError)
	uih := ui.Handler()
	s.mux.Handle("GET /{$}", uih)
	s.mux.Handle("GET "+ui.AssetPrefix, uih)
	s.mux.Handle("GET /favicon.ico", uih)
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, newError("not_found", "", r.Method+" "+r.URL.Path+" is not an API endpoint; see docs/api.md"))
	})
	return s
}

// ServeHTTP dispatches a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.guard(w, r) {
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) kinesisOrError(w http.ResponseWriter, r *http.Request) {
	if s.kinesis != nil {
		s.kinesis.ServeHTTP(w, r)
		return
	}
	writeError(w, newError("invalid_argument", "X-Amz-Target", "POST / is the Kinesis Data Streams API: send X-Amz-Target: Kinesis_20131202.<Operation>"))
}

// ListenAndServe serves on addr until ctx ends, then shuts down gracefully
// (in-flight requests get up to grace to finish). ready, if not nil,
// receives the bound address once listening. The default Limits apply.
func ListenAndServe(ctx context.Context, addr string, h http.Handler, grace time.Duration, ready func(net.Addr)) error {
	return ListenAndServeGuarded(ctx, addr, h, grace, ready, NewGuard(Limits{}, nil), nil)
}

// ListenAndServeGuarded is ListenAndServe with g's limits on connections,
// request bytes in flight and body times, over TLS when tlsCfg is not nil.
//
// It speaks HTTP/1.1 and HTTP/2: over TLS negotiated by ALPN, without TLS
// as cleartext HTTP/2 with prior knowledge (h2c, as the SDKs and Runnel's
// own clients use it for SubscribeToShard). Both are net/http's own, so
// each HTTP/2 stream is a request through g.Wrap like an HTTP/1.1 one (its
// body counted against the bytes in flight, under the body timeout) and an
// idle HTTP/2 connection is closed like an idle HTTP/1.1 one. h must not
// serve h2c itself (kinesis.H2C): a connection it takes over is served
// outside the limits.
func ListenAndServeGuarded(ctx context.Context, addr string, h http.Handler, grace time.Duration, ready func(net.Addr), g *Guard, tlsCfg *tls.Config) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ln = g.Listener(ln, h)
	srv := &http.Server{Handler: g.Wrap(h), TLSConfig: tlsCfg, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: g.lim.IdleTimeout,
		MaxHeaderBytes: g.lim.MaxHeaderBytes, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	// A connection on which nothing can be written for the write timeout
	// is closed: over HTTP/2 a stream's own write deadline cannot end a
	// handler while the connection's writer is stuck behind a client that
	// stopped reading.
	srv.HTTP2 = &http.HTTP2Config{WriteByteTimeout: g.lim.WriteTimeout, MaxConcurrentStreams: g.lim.MaxConnStreams}
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// IsLoopback reports whether addr binds only to a loopback interface.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
