package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/grafana/pyroscope-go"
)

// startDebug serves net/http/pprof on addr (its own port, off by default)
// until ctx ends.
func startDebug(ctx context.Context, addr string, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--debug-addr: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go srv.Serve(ln)
	log.Info("pprof listening", "addr", ln.Addr().String())
	return nil
}

// startProfiling sends continuous CPU and memory profiles to a Pyroscope
// server. The caller stops the returned profiler on shutdown.
func startProfiling(url string, every time.Duration, log *slog.Logger) (*pyroscope.Profiler, error) {
	p, err := pyroscope.Start(pyroscope.Config{
		ApplicationName: "runnel",
		ServerAddress:   url,
		UploadRate:      every,
		ProfileTypes:    []pyroscope.ProfileType{pyroscope.ProfileCPU, pyroscope.ProfileAllocSpace, pyroscope.ProfileInuseSpace, pyroscope.ProfileGoroutines},
	})
	if err != nil {
		return nil, fmt.Errorf("--pyroscope-url: %w", err)
	}
	log.Info("continuous profiling on", "pyroscope", url)
	return p, nil
}
