package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/web/auth"
)

func init() {
	register("tokens", "create, list and revoke the tokens that may call a server (create|list|revoke)", runTokens)
}

const tokensHelp = `
Tokens say who may call a server started with --auth. Each has a role (reader: read streams,
jobs, results, metrics; writer: also put records, create and reshape streams; admin: also
delete streams, submit and stop jobs, savepoints, tokens) and optionally --streams, glob
patterns limiting it to matching streams.

With --data DIR the command works on the data directory directly (the server may be running
or not; it notices within a second). Without --data it asks the server at --server, which
needs an admin token (--token or RUNNEL_TOKEN).

Subcommands:
  create NAME --role admin|writer|reader [--streams GLOB,...] [--aws]
  list
  revoke NAME`

func runTokens(args []string) error {
	if len(args) == 0 || isHelp(args[0]) {
		fs := newFlags("tokens", "tokens create|list|revoke [flags]", tokensHelp)
		fs.SetOutput(helpOut(len(args) > 0))
		fs.Usage()
		if len(args) == 0 {
			return fmt.Errorf("%w: name a subcommand: create, list or revoke", errUsage)
		}
		return nil
	}
	switch args[0] {
	case "create":
		return runTokensCreate(args[1:])
	case "list":
		return runTokensList(args[1:])
	case "revoke":
		return runTokensRevoke(args[1:])
	}
	return fmt.Errorf("%w: unknown subcommand %q: use create, list or revoke", errUsage, args[0])
}

// tokenTarget is where a tokens subcommand acts: the data directory, or a
// server.
type tokenTarget struct {
	data   *string
	server *string
}

func addTokenTarget(fs *flag.FlagSet) tokenTarget {
	return tokenTarget{
		data:   fs.String("data", "", "work on this data directory's token store directly (no server needed)"),
		server: addServerFlag(fs),
	}
}

func (t tokenTarget) store() (*auth.Store, error) {
	if _, err := os.Stat(*t.data); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", *t.data, err)
	}
	return auth.Open(filepath.Join(*t.data, "auth"))
}

// createStore is store for create, which may make the first token of a
// server that has not run yet: a missing data directory is made (as
// runnel serve makes it), and said so on stderr, so a mistyped path shows.
func (t tokenTarget) createStore() (*auth.Store, error) {
	if _, err := os.Stat(*t.data); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(*t.data, 0o755); err != nil {
			return nil, fmt.Errorf("data directory %s: %w", *t.data, err)
		}
		fmt.Fprintf(os.Stderr, "created the data directory %s\n", *t.data)
	}
	return t.store()
}

func runTokensCreate(args []string) error {
	fs := newFlags("tokens create", "tokens create NAME --role admin|writer|reader [--streams GLOB,...] [--aws] [--data DIR]", `
Creates a token and prints its secret once: the token alone on the first line of stdout
(for REST: Authorization: Bearer TOKEN, runnel --token, the web UI's sign-in). With --aws
also AWS keys for the Kinesis API, as the lines of an AWS credentials file:
  aws_access_key_id = ...
  aws_secret_access_key = ...
Only the token's SHA-256 is stored; the AWS secret is derived from DATA/auth/auth.key.`)
	role := fs.String("role", "", "admin, writer or reader (required)")
	streamsFlag := fs.String("streams", "", "comma-separated stream name patterns (* ? [...]) the token is limited to; default all streams")
	aws := fs.Bool("aws", false, "also make an AWS access key id and secret for the Kinesis API (SigV4)")
	target := addTokenTarget(fs)
	pos, err := parseInterspersed(fs, args, 1, "a token NAME")
	if err != nil {
		return err
	}
	r, err := auth.ParseRole(*role)
	if err != nil {
		return fmt.Errorf("%w: --role must be admin, writer or reader", errUsage)
	}
	grants := splitList(*streamsFlag)
	var c auth.Created
	if *target.data != "" {
		st, err := target.createStore()
		if err != nil {
			return err
		}
		if c, err = st.Create(pos[0], r, grants, *aws); err != nil {
			return err
		}
	} else {
		cl := newClient(*target.server)
		body := map[string]any{"name": pos[0], "role": r.String(), "streams": grants, "aws": *aws}
		if err := cl.do("POST", "/api/v1/tokens", body, &c); err != nil {
			return err
		}
		warnAuthOff(cl)
	}
	fmt.Println(c.Secret)
	if c.AccessKeyID != "" {
		fmt.Printf("aws_access_key_id = %s\naws_secret_access_key = %s\n", c.AccessKeyID, c.SecretAccessKey)
	}
	fmt.Fprintf(os.Stderr, "token %s (role %s) created; the secret is shown only this once\n", c.Name, c.Role)
	return nil
}

// warnAuthOff says on stderr when the server a token was created on does
// not check tokens: the token works only once the server runs with auth
// on. A server that does not answer the question is left alone.
func warnAuthOff(cl *client) {
	var s struct {
		Auth *bool `json:"auth"`
	}
	if cl.do("GET", "/api/v1/session", nil, &s) != nil || s.Auth == nil || *s.Auth {
		return
	}
	fmt.Fprintf(os.Stderr, "the server at %s has auth off: it does not check tokens, so this one does nothing until it runs with --auth (see docs/security.md, 'Turning auth on')\n", cl.base)
}

func runTokensList(args []string) error {
	fs := newFlags("tokens list", "tokens list [--data DIR]", `Lists the tokens: name, role, streams, AWS access key id, creation time. Never secrets.`)
	target := addTokenTarget(fs)
	if _, err := parseInterspersed(fs, args, 0, ""); err != nil {
		return err
	}
	var ts []auth.Token
	if *target.data != "" {
		st, err := target.store()
		if err != nil {
			return err
		}
		ts = st.List()
	} else {
		var out struct {
			Tokens []auth.Token `json:"tokens"`
		}
		if err := newClient(*target.server).do("GET", "/api/v1/tokens", nil, &out); err != nil {
			return err
		}
		ts = out.Tokens
	}
	tw := newTable("NAME\tROLE\tSTREAMS\tAWS KEY\tCREATED")
	for _, t := range ts {
		streams := strings.Join(t.Streams, ",")
		if streams == "" {
			streams = "*"
		}
		key := t.AccessKeyID
		if key == "" {
			key = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Role, streams, key, t.Created.Format(time.RFC3339))
	}
	return tw.Flush()
}

func runTokensRevoke(args []string) error {
	fs := newFlags("tokens revoke", "tokens revoke NAME [--data DIR]", `
Deletes a token: its bearer secret, its AWS keys and the web UI sessions it opened stop
working at once (within a second for a server sharing --data).`)
	target := addTokenTarget(fs)
	pos, err := parseInterspersed(fs, args, 1, "a token NAME")
	if err != nil {
		return err
	}
	if *target.data != "" {
		st, err := target.store()
		if err != nil {
			return err
		}
		if err := st.Revoke(pos[0]); err != nil {
			if errors.Is(err, auth.ErrTokenNotFound) {
				return fmt.Errorf("%w ('runnel tokens list --data %s' lists the tokens)", err, *target.data)
			}
			return err
		}
	} else if err := newClient(*target.server).do("DELETE", "/api/v1/tokens/"+url.PathEscape(pos[0]), nil, nil); err != nil {
		var ae *apiErr
		if errors.As(err, &ae) && ae.Code == "not_found" {
			return fmt.Errorf("%w ('runnel tokens list' lists the tokens)", err)
		}
		return err
	}
	fmt.Fprintf(os.Stderr, "token %s revoked\n", pos[0])
	return nil
}
