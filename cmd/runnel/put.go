package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
)

func init() {
	register("put", "put records into a stream, one per line of stdin", runPut)
}

func runPut(args []string) error {
	fs := newFlags("put", "put STREAM [--key K | --key-field F]", `
Reads stdin and puts one record per line (without its newline) into STREAM, in batches of
up to 500 records. Each record's partition key is --key, or the value of --key-field in the
line's JSON object, or (neither given) the line number. Prints how many records were
acknowledged; every acknowledged record is durable.`)
	server := addServerFlag(fs)
	key := fs.String("key", "", "partition key for every record")
	keyField := fs.String("key-field", "", "take each record's partition key from this field of its JSON object")
	pos, err := parseInterspersed(fs, args, 1, "STREAM")
	if err != nil {
		return err
	}
	if *key != "" && *keyField != "" {
		return fmt.Errorf("%w: give --key or --key-field, not both", errUsage)
	}
	return putLines(newClient(*server), pos[0], os.Stdin, *key, *keyField)
}

func putLines(c *client, stream string, in io.Reader, key, keyField string) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 2<<20)
	type rec struct {
		Key  string `json:"key"`
		Data string `json:"data"`
	}
	var batch []rec
	total, line := 0, 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := c.do("POST", "/api/v1/streams/"+url.PathEscape(stream)+"/records", map[string]any{"records": batch}, nil); err != nil {
			return fmt.Errorf("after %d acknowledged records: %w", total, err)
		}
		total += len(batch)
		batch = batch[:0]
		return nil
	}
	for sc.Scan() {
		line++
		text := sc.Text()
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
		}
		if k == "" {
			k = strconv.Itoa(line)
		}
		batch = append(batch, rec{Key: k, Data: text})
		if len(batch) == 500 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read stdin at line %d: %w", line+1, err)
	}
	if err := flush(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "put %d records into %s\n", total, stream)
	return nil
}
