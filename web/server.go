package web

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/streams"
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
}

// Server is Runnel's HTTP front door.
type Server struct {
	store   *streams.Store
	log     *slog.Logger
	kinesis http.Handler
	jobs    *jobs.Manager
	mux     *http.ServeMux
	reg     *prometheus.Registry
}

// New builds the handler tree.
func New(cfg Config) *Server {
	s := &Server{store: cfg.Store, log: cfg.Logger, kinesis: cfg.Kinesis, jobs: cfg.Jobs, mux: http.NewServeMux(), reg: prometheus.NewRegistry()}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cfg.Store != nil {
		s.reg.MustRegister(newCollector(cfg.Store, cfg.Jobs))
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	s.routeStreams(s.mux)
	s.routeJobs(s.mux)
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
// receives the bound address once listening.
func ListenAndServe(ctx context.Context, addr string, h http.Handler, grace time.Duration, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
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
