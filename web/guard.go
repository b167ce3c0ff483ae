package web

import (
	"mime"
	"net"
	"net/http"
	"strings"
)

// Browser defences, on whether or not auth is: a web page the user visits
// must not be able to change anything (cross-site requests and "simple"
// content types are refused on every state-changing route), nor read
// answers through a DNS name it rebinds to this server (Host is checked).
// CORS is answered only for the origins --cors-origins names.

// corsAllowHeaders are the request headers a configured origin may send:
// what the AWS SDK for JavaScript signs and sends to the Kinesis API, and
// the REST API's.
var corsAllowHeaders = []string{"authorization", "content-type", "content-length", "x-amz-target", "x-amz-date",
	"x-amz-user-agent", "x-amz-content-sha256", "x-amz-security-token", "amz-sdk-invocation-id", "amz-sdk-request"}

// corsExposeHeaders are the response headers a configured origin may read.
const corsExposeHeaders = "x-amzn-RequestId, x-amzn-ErrorType, x-amz-id-2, Content-Length"

// bodyTypes are the content types a state-changing REST request may carry:
// none of them is one a page can send without a CORS preflight.
var bodyTypes = map[string]bool{"application/json": true, "application/yaml": true}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// guard answers the request itself (and returns false) when a browser
// defence refuses it.
func (s *Server) guard(w http.ResponseWriter, r *http.Request) bool {
	if !s.hostAllowed(r.Host) {
		s.refused(r, "host_not_allowed")
		writeError(w, newError("host_not_allowed", "Host", "Host "+quoteHost(r.Host)+" is not this server's; add the name to --allowed-hosts if it is (this check stops DNS rebinding)"))
		return false
	}
	origin := r.Header.Get("Origin")
	corsOK := origin != "" && s.corsOrigin(origin)
	if corsOK {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	}
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		s.preflight(w, r, corsOK)
		return false
	}
	if safeMethod(r.Method) {
		return true
	}
	if !corsOK && crossOrigin.Check(r) != nil {
		s.refused(r, "cross_site_request")
		writeError(w, newError("cross_site_request", "Origin", "cross-site "+r.Method+" refused: this route changes state, and the request came from another site (Origin "+
			quoteHost(origin)+", Sec-Fetch-Site "+quoteHost(r.Header.Get("Sec-Fetch-Site"))+"); allow an origin with --cors-origins"))
		return false
	}
	if r.URL.Path == "/" {
		// The Kinesis API answers any other media type itself, as AWS
		// does (UnknownOperationException), and runs no operation for it.
		return true
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" && r.ContentLength == 0 {
		return true
	}
	if mt, _, _ := mime.ParseMediaType(ct); !bodyTypes[mt] {
		s.refused(r, "unsupported_media_type")
		writeError(w, newError("unsupported_media_type", "Content-Type", "Content-Type "+quoteHost(ct)+" is not accepted on "+r.Method+" "+r.URL.Path+": send application/json or application/yaml"))
		return false
	}
	return true
}

// crossOrigin is net/http's check of Sec-Fetch-Site (browsers that send
// it), falling back to Origin against Host (older ones); requests with
// neither, from clients that are not browsers, pass.
var crossOrigin = http.NewCrossOriginProtection()

func (s *Server) corsOrigin(origin string) bool {
	for _, o := range s.sec.CORSOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// preflight answers a CORS preflight: for a configured origin, the methods
// and headers it may use; for any other, 403 and no CORS headers, so the
// browser does not send the request.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request, corsOK bool) {
	if !corsOK {
		s.refused(r, "cross_site_request")
		writeError(w, newError("cross_site_request", "Origin", "CORS is not enabled for origin "+quoteHost(r.Header.Get("Origin"))+"; start the server with --cors-origins to allow it"))
		return
	}
	var asked []string
	for _, f := range strings.Split(r.Header.Get("Access-Control-Request-Headers"), ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" {
			continue
		}
		if !allowedCORSHeader(f) {
			writeError(w, newError("cross_site_request", "Access-Control-Request-Headers", "header "+f+" may not be sent cross-origin"))
			return
		}
		asked = append(asked, f)
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
	if len(asked) > 0 {
		h.Set("Access-Control-Allow-Headers", strings.Join(asked, ", "))
	}
	h.Set("Access-Control-Max-Age", "600")
	h.Add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers")
	w.WriteHeader(http.StatusNoContent)
}

func allowedCORSHeader(h string) bool {
	if strings.HasPrefix(h, "x-amz-") || strings.HasPrefix(h, "amz-sdk-") {
		return true
	}
	for _, a := range corsAllowHeaders {
		if h == a {
			return true
		}
	}
	return false
}

// hostAllowed reports whether a Host header names this server: an IP
// address or localhost (a DNS rebinding attack needs a name the attacker
// controls), or a name from --allowed-hosts or --addr.
func (s *Server) hostAllowed(host string) bool {
	if host == "" {
		return false
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.ToLower(strings.Trim(name, "[]")), ".")
	if name == "localhost" || net.ParseIP(name) != nil {
		return true
	}
	for _, a := range s.sec.AllowedHosts {
		a = strings.ToLower(a)
		if a == name || a == strings.ToLower(host) {
			return true
		}
	}
	return false
}

func quoteHost(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "(none)"
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s) + `"`
}
