package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/aws/smithy-go"
	"github.com/runnel-dev/runnel/client/producer"
)

func init() {
	register("put", "put records into a stream, one per line of stdin", runPut)
}

func runPut(args []string) error {
	fs := newFlags("put", "put STREAM [--key K | --key-field F] [--aggregate] [--ordered]", `
Reads stdin and puts one record per line (without its newline) into STREAM through the
producer library (client/producer) over the server's Kinesis API: records are batched per
shard (up to 500 records or 1 MiB a request), throttled or failed records are retried with
backoff. Each record's partition key (1 to 256 characters) is --key, or the value of
--key-field in the line's JSON object, or (neither given) the line number. Prints how many records were acknowledged; every
acknowledged record is durable. Records of one key keep their order unless a request partly
fails (the server throttled some of its records) and a retried record lands after a later one
of its batch; --ordered rules that out by sending at most one record per key per request
(slower for few keys), --aggregate packs records in the KPL's aggregated format (consumers must
de-aggregate, as the KCL does). Exits 1 if any record could not be put. An interrupt (SIGINT,
SIGTERM) stops the reading of stdin: the lines read before it are put and counted.`)
	server := addServerFlag(fs)
	key := fs.String("key", "", "partition key for every record")
	keyField := fs.String("key-field", "", "take each record's partition key from this field of its JSON object")
	aggregate := fs.Bool("aggregate", false, "pack records into KPL aggregated records")
	ordered := fs.Bool("ordered", false, "keep each key's order even across partial failures (at most one record per key per request)")
	pos, err := parseInterspersed(fs, args, 1, "STREAM")
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["key"] && set["key-field"] {
		return fmt.Errorf("%w: give --key or --key-field, not both", errUsage)
	}
	if n := utf8.RuneCountInString(*key); set["key"] && (n < 1 || n > maxKeyChars) {
		return fmt.Errorf("%w: --key must be 1 to %d characters (a partition key), not %d; leave it out to key each line by its number", errUsage, maxKeyChars, n)
	}
	if set["key-field"] && *keyField == "" {
		return fmt.Errorf("%w: --key-field needs a field name", errUsage)
	}
	if err := checkServerURL(*server); err != nil {
		return err
	}
	opts := producer.Options{Aggregate: *aggregate, Ordering: producer.Unordered, NoRateLimit: true}
	if *ordered {
		opts.Ordering = producer.PerKey
	}
	return putLines(producer.Runnel(*server, pos[0], bearerToken()), *server, os.Stdin, *key, *keyField, opts)
}

// putLines puts stdin's lines and waits until each is acknowledged or
// failed.
func putLines(target producer.Target, server string, in io.Reader, key, keyField string, opts producer.Options) error {
	var mu sync.Mutex
	acked, failed := 0, 0
	var firstErr error
	opts.OnResult = func(r producer.Result) {
		mu.Lock()
		defer mu.Unlock()
		if r.Err == nil {
			acked++
			return
		}
		failed++
		if firstErr == nil {
			firstErr = r.Err
		}
	}
	p, err := producer.New(context.Background(), target, opts)
	if err != nil {
		return explainPutErr(err, target.Stream, server)
	}
	// An interrupt stops the reading of stdin; the lines read are still
	// put, and counted, before the command ends.
	ctx, stop := untilInterrupted()
	readErr := putEach(ctx, p, in, key, keyField)
	stop() // a second interrupt, while the last records are sent, ends the command as usual
	interrupted := errors.Is(readErr, errInterrupted)
	if interrupted {
		readErr = nil
	}
	if err := p.Close(context.Background()); err != nil && readErr == nil {
		readErr = err
	}
	mu.Lock()
	defer mu.Unlock()
	if readErr != nil {
		return fmt.Errorf("after %d acknowledged records: %w", acked, readErr)
	}
	if failed > 0 {
		return fmt.Errorf("after %d acknowledged records: %d records failed: %w", acked, failed, explainPutErr(firstErr, target.Stream, server))
	}
	if interrupted {
		fmt.Fprintf(os.Stderr, "interrupted: put %d records into %s, every line read before the interrupt\n", acked, target.Stream)
		return nil
	}
	fmt.Fprintf(os.Stderr, "put %d records into %s\n", acked, target.Stream)
	return nil
}

// maxKeyChars is the longest partition key, as in Kinesis.
const maxKeyChars = 256

// errInterrupted ends putEach when ctx is cancelled by an interrupt.
var errInterrupted = errors.New("interrupted")

// scanLines sends in's lines to the channel it returns, which it closes
// at the end of in, and then the scanner's error (nil at the end) to errc.
func scanLines(in io.Reader, errc chan<- error) <-chan string {
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 2<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		errc <- sc.Err()
		close(lines)
	}()
	return lines
}

// putEach puts in's lines until its end or, returning errInterrupted, until
// ctx is cancelled (a read of stdin under way is left behind).
func putEach(ctx context.Context, p *producer.Producer, in io.Reader, key, keyField string) error {
	errc := make(chan error, 1)
	lines := scanLines(in, errc)
	line := 0
	for {
		var text string
		select {
		case <-ctx.Done():
			return errInterrupted
		case t, ok := <-lines:
			if !ok {
				return scanErr(<-errc, line)
			}
			text = t
		}
		line++
		k := key
		if keyField != "" {
			var obj map[string]any
			if err := json.Unmarshal([]byte(text), &obj); err != nil {
				return fmt.Errorf("line %d: --key-field needs a JSON object per line: %v", line, err)
			}
			v, ok := obj[keyField]
			if !ok {
				return fmt.Errorf("line %d: field %q is missing", line, keyField)
			}
			switch t := v.(type) {
			case string:
				k = t
			default:
				b, _ := json.Marshal(t)
				k = string(b)
			}
			if n := utf8.RuneCountInString(k); n < 1 || n > maxKeyChars {
				return fmt.Errorf("line %d: field %q holds a key of %d characters: a partition key has 1 to %d", line, keyField, n, maxKeyChars)
			}
		}
		if k == "" {
			k = strconv.Itoa(line)
		}
		if err := p.Put(ctx, k, []byte(text)); err != nil {
			if ctx.Err() != nil {
				return errInterrupted
			}
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
}

// scanErr is the error of a scan of stdin that ended after line lines.
func scanErr(err error, line int) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bufio.ErrTooLong):
		return fmt.Errorf("line %d is longer than 2 MiB: a record holds at most 1 MiB (data plus partition key)", line+1)
	default:
		return fmt.Errorf("read stdin at line %d: %w", line+1, err)
	}
}

// explainPutErr turns the Kinesis API's errors into the CLI's words.
func explainPutErr(err error, stream, server string) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ResourceNotFoundException":
			return fmt.Errorf("stream %q does not exist (create it with 'runnel streams create %s')", stream, stream)
		case "UnrecognizedClientException", "MissingAuthenticationTokenException":
			if bearerToken() == "" {
				return fmt.Errorf("%s: %s (the server at %s has auth on: pass --token or set RUNNEL_TOKEN to a writer token from 'runnel tokens create')", ae.ErrorCode(), ae.ErrorMessage(), server)
			}
			return fmt.Errorf("%s: %s (the server at %s knows no such token: it may be mistyped or revoked; 'runnel tokens list' shows the tokens)", ae.ErrorCode(), ae.ErrorMessage(), server)
		}
		return fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	var oe interface{ Timeout() bool }
	if errors.As(err, &oe) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("cannot reach the server at %s (start one with 'runnel serve', or set --server): %w", server, err)
	}
	return err
}
