package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"

	"github.com/runnel-dev/runnel/web"
	"github.com/runnel-dev/runnel/web/auth"
)

// securityFlags are runnel serve's authentication and browser-defence flags.
type securityFlags struct {
	auth, insecure bool
	hosts, cors    string
}

func addSecurityFlags(fs *flag.FlagSet) *securityFlags {
	f := &securityFlags{}
	fs.BoolVar(&f.auth, "auth", false, "require a token (REST, web UI) or SigV4 keys (Kinesis API) on every call; on by default when --addr is not loopback")
	fs.BoolVar(&f.insecure, "insecure-no-auth", false, "serve beyond loopback WITHOUT authentication: anyone who reaches the port can read, write and delete streams and run jobs")
	fs.StringVar(&f.hosts, "allowed-hosts", "", "comma-separated host names (beside IP addresses, localhost and the --addr name) the Host header may carry; stops DNS rebinding")
	fs.StringVar(&f.cors, "cors-origins", "", "comma-separated origins (https://app.example) allowed to call cross-origin, e.g. the AWS SDK for JavaScript in a page; none by default")
	return f
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// config decides whether auth is on and opens the token store in
// DATA/auth.
func (f *securityFlags) config(addr, data string, log *slog.Logger) (web.Security, error) {
	if f.auth && f.insecure {
		return web.Security{}, fmt.Errorf("%w: --auth and --insecure-no-auth contradict each other", errUsage)
	}
	loopback := web.IsLoopback(addr)
	sec := web.Security{Auth: f.auth || (!loopback && !f.insecure), AllowedHosts: splitList(f.hosts), CORSOrigins: splitList(f.cors)}
	if host, _, err := net.SplitHostPort(addr); err == nil && host != "" && net.ParseIP(host) == nil {
		sec.AllowedHosts = append(sec.AllowedHosts, host)
	}
	for _, o := range sec.CORSOrigins {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			return web.Security{}, fmt.Errorf("%w: --cors-origins: %q is not an origin (scheme://host[:port])", errUsage, o)
		}
	}
	tokens, err := auth.Open(filepath.Join(data, "auth"))
	if err != nil {
		return web.Security{}, err
	}
	sec.Tokens = tokens
	switch {
	case !loopback && !sec.Auth:
		log.Error("serving beyond loopback WITHOUT authentication (--insecure-no-auth): anyone who can reach this address can read, write and delete streams, submit jobs and read their results; use --auth with tokens instead", "addr", addr)
	case sec.Auth && tokens.Len() == 0:
		log.Warn("auth is on and there are no tokens yet: every call will be refused; create one with 'runnel tokens create NAME --role admin --data "+data+"'", "addr", addr)
	}
	if sec.Auth {
		log.Info("authentication on", "tokens", tokens.Len())
	}
	return sec, nil
}
