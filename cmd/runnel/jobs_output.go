package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
)

// outputPage is the answer of GET /api/v1/jobs/{id}/output.
type outputPage struct {
	Sink string `json:"sink"`
	Kind string `json:"kind"`
	Rows []struct {
		Seq   uint64          `json:"seq"`
		Value json.RawMessage `json:"value"`
	} `json:"rows"`
	Next   uint64 `json:"next"`
	Missed uint64 `json:"missed"`
}

// outputFollowWait is how long one read of --follow waits for rows.
const outputFollowWait = "20s"

func jobsOutput(args []string) error {
	fs := newFlags("jobs output", "jobs output ID [--sink S] [--follow]",
		"Prints the last rows a job's sink was given (any kind: log, stream, file, dashboard, kafka, postgres, "+
			"or OPERATOR-dead-letters), one JSON value a line, oldest first. The server keeps the last 1000 rows "+
			"of each sink; a sink that takes part in checkpoints shows its rows once their checkpoint commits.")
	server := addServerFlag(fs)
	sink := fs.String("sink", "", "the sink's id (default: the job's first sink)")
	follow := fs.Bool("follow", false, "keep printing rows as they come, until interrupted")
	pos, err := parseInterspersed(fs, args, 1, "ID")
	if err != nil {
		return err
	}
	ctx, stop := untilInterrupted()
	defer stop()
	c := newClient(*server).withContext(ctx)
	var after uint64
	for {
		q := url.Values{"after": {strconv.FormatUint(after, 10)}}
		if *sink != "" {
			q.Set("sink", *sink)
		}
		if *follow {
			q.Set("wait", outputFollowWait)
		}
		var page outputPage
		if err := c.do("GET", "/api/v1/jobs/"+url.PathEscape(pos[0])+"/output?"+q.Encode(), nil, &page); err != nil {
			if ctx.Err() != nil {
				return nil // stopped by the user
			}
			return err
		}
		if page.Missed > 0 {
			fmt.Fprintf(os.Stderr, "(%d rows of sink %s left the server's buffer before they were read)\n", page.Missed, page.Sink)
		}
		for _, r := range page.Rows {
			fmt.Println(string(r.Value))
		}
		after = page.Next
		if !*follow && len(page.Rows) == 0 {
			return nil
		}
	}
}

func jobsResume(args []string) error {
	fs := newFlags("jobs resume", "jobs resume ID", "Starts a stopped or failed job again from its latest checkpoint: its state, source positions and watermarks.")
	return callOne(fs, addServerFlag(fs), args, "ID", "POST", "/api/v1/jobs/", "/resume", "resumed job")
}
