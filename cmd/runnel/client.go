package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// client talks to a Runnel server's REST API.
type client struct {
	base  string
	http  *http.Client
	token string
	ctx   context.Context // nil: context.Background
}

// clientToken is the --token flag of the command being run (each process
// runs one command, so one flag set registers it).
var clientToken = new(string)

// addServerFlag registers --server, and --token beside it, on a command
// that talks to a server.
func addServerFlag(fs *flag.FlagSet) *string {
	fs.StringVar(clientToken, "token", "", "bearer token for a server with auth on (env RUNNEL_TOKEN)")
	return fs.String("server", serverURL(), "server URL (env RUNNEL_SERVER)")
}

// bearerToken is the command's --token, else $RUNNEL_TOKEN.
func bearerToken() string {
	if *clientToken != "" {
		return *clientToken
	}
	return os.Getenv("RUNNEL_TOKEN")
}

func newClient(server string) *client {
	return &client{base: strings.TrimRight(server, "/"), http: &http.Client{Timeout: 2 * time.Minute}, token: bearerToken()}
}

// withContext makes c's requests end when ctx ends.
func (c *client) withContext(ctx context.Context) *client {
	c.ctx = ctx
	return c
}

// untilInterrupted is a context that the first interrupt (Ctrl-C, SIGINT)
// or SIGTERM ends, for a command that runs until the user stops it. Such a
// command stops cleanly and exits 0, as serve, consume, agent, run and put
// do: being stopped is how it is meant to end. stop restores the default
// handling (a second interrupt then ends the process at once).
func untilInterrupted() (ctx context.Context, stop context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// apiErr is the server's error body.
type apiErr struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
	Line    int    `json:"line"`
}

func (e *apiErr) Error() string {
	var b strings.Builder
	if prefix := fmt.Sprintf("line %d: ", e.Line); e.Line > 0 && !strings.HasPrefix(e.Message, prefix) {
		b.WriteString(prefix)
	}
	b.WriteString(e.Message)
	if e.Field != "" && !strings.Contains(e.Message, e.Field) {
		fmt.Fprintf(&b, " (field %s)", e.Field)
	}
	return b.String()
}

// do sends a request with an optional JSON body and decodes a JSON answer
// into out (if not nil).
func (c *client) do(method, path string, body, out any) error {
	if body == nil {
		return c.doRaw(method, path, "", nil, out)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return c.doRaw(method, path, "application/json", b, out)
}

// doRaw sends body (if not nil) with the given content type and decodes a
// JSON answer into out (if not nil).
func (c *client) doRaw(method, path, contentType string, body []byte, out any) error {
	if err := checkServerURL(c.base); err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	ctx := c.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the server at %s (start one with 'runnel serve', or set --server): %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error *apiErr `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != nil {
			if resp.StatusCode == http.StatusUnauthorized && c.token == "" {
				return fmt.Errorf("%w (this server has auth on: pass --token or set RUNNEL_TOKEN)", e.Error)
			}
			if resp.StatusCode == http.StatusUnauthorized {
				return fmt.Errorf("%s: check --token or RUNNEL_TOKEN, or create a token with 'runnel tokens create NAME --role ROLE --data DIR'", e.Error.Message)
			}
			return e.Error
		}
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

// getCommand is the whole of a command NAME that takes only --server and
// --token: it parses args, GETs path from the server and decodes the
// answer into out.
func getCommand(name, description, path string, args []string, out any) error {
	fs := newFlags(name, name, description)
	server := addServerFlag(fs)
	if _, err := parseInterspersed(fs, args, 0, ""); err != nil {
		return err
	}
	return newClient(*server).do("GET", path, nil, out)
}

// getOrPrint GETs path from the server at server; with asJSON it prints
// the answer as it came (printed is true), else decodes it into out.
func getOrPrint(server, path string, asJSON bool, out any) (printed bool, err error) {
	var raw json.RawMessage
	if err := newClient(server).do("GET", path, nil, &raw); err != nil {
		return false, err
	}
	if asJSON {
		fmt.Println(string(raw))
		return true, nil
	}
	return false, json.Unmarshal(raw, out)
}

// newTable is a table on stdout in the CLI's column layout, its header
// (tab-separated column names) written.
func newTable(header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	return tw
}
