package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
)

// runnel jobs preview, errors, restart, deploy and delete: the lifecycle
// and inspection subcommands beside submit and stop.

func jobsPreview(args []string) error {
	fs := newFlags("jobs preview", "jobs preview FILE [--records N] [--json]",
		"Runs a job file on the last N records of its input stream (a file or generator source: its first N) with its sinks replaced by an in-memory capture, and prints each operator's rows and errors. Nothing is written and nothing is kept.")
	server := addServerFlag(fs)
	records := fs.Int("records", 1000, "how many records to run on (1–100000)")
	raw := fs.Bool("json", false, "print the server's JSON answer")
	rows := fs.Int("rows", 5, "rows to print per operator")
	pos, src, err := parseWithJobFile(fs, args, 1, "FILE")
	if err != nil {
		return err
	}
	if *records < 1 || *records > 100000 {
		return fmt.Errorf("%w: --records must be 1 to 100000, not %d", errUsage, *records)
	}
	var out json.RawMessage
	path := "/api/v1/jobs/preview?records=" + strconv.Itoa(*records)
	if err := newClient(*server).doRaw("POST", path, "application/yaml", src, &out); err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	if *raw {
		fmt.Println(string(out))
		return nil
	}
	var res struct {
		RecordsRead int64    `json:"records_read"`
		ElapsedMS   float64  `json:"elapsed_ms"`
		TimedOut    bool     `json:"timed_out"`
		Error       string   `json:"error"`
		Warnings    []string `json:"warnings"`
		Operators   []struct {
			ID         string            `json:"id"`
			Kind       string            `json:"kind"`
			Rows       []json.RawMessage `json:"rows"`
			RowCount   int64             `json:"row_count"`
			Flushed    bool              `json:"flushed"`
			ErrorCount int64             `json:"error_count"`
			Errors     []struct {
				Message string          `json:"message"`
				Record  json.RawMessage `json:"record"`
				Origin  *struct {
					Stream, Shard, Sequence string
				} `json:"origin"`
			} `json:"errors"`
		} `json:"operators"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return err
	}
	fmt.Printf("read %d records in %.0f ms\n", res.RecordsRead, res.ElapsedMS)
	for _, w := range res.Warnings {
		fmt.Println("warning:", w)
	}
	if res.TimedOut {
		fmt.Println("warning: the preview was cut at its time limit; windows were not flushed")
	}
	if res.Error != "" {
		fmt.Println("error:", res.Error)
	}
	for _, op := range res.Operators {
		note := ""
		if op.Flushed {
			note = ", open windows flushed at the end"
		}
		fmt.Printf("\n%s (%s): %d rows, %d errors%s\n", op.ID, op.Kind, op.RowCount, op.ErrorCount, note)
		for i, r := range op.Rows {
			if i == *rows {
				fmt.Printf("  … %d more\n", op.RowCount-int64(i))
				break
			}
			fmt.Printf("  %s\n", r)
		}
		for i, e := range op.Errors {
			if i == *rows {
				fmt.Printf("  … %d more errors\n", op.ErrorCount-int64(i))
				break
			}
			where := ""
			if e.Origin != nil {
				where = fmt.Sprintf(" at %s %s %s", e.Origin.Stream, e.Origin.Shard, e.Origin.Sequence)
			}
			fmt.Printf("  error%s: %s\n    record: %s\n", where, e.Message, e.Record)
		}
	}
	return nil
}

func jobsErrors(args []string) error {
	fs := newFlags("jobs errors", "jobs errors ID [--limit N] [--json]",
		"Shows a job's error history, newest first: the records its operators dead-lettered and the failures that ended its runs (the last 1000, kept in the server's memory).")
	server := addServerFlag(fs)
	limit := fs.Int("limit", 20, "errors to show (1–1000)")
	raw := fs.Bool("json", false, "print the server's JSON answer")
	pos, err := parseInterspersed(fs, args, 1, "ID")
	if err != nil {
		return err
	}
	if *limit < 1 || *limit > 1000 {
		return fmt.Errorf("%w: --limit must be 1 to 1000, not %d", errUsage, *limit)
	}
	path := "/api/v1/jobs/" + url.PathEscape(pos[0]) + "/errors?limit=" + strconv.Itoa(*limit)
	var page struct {
		Total  int64 `json:"total"`
		Errors []struct {
			Time     string          `json:"time"`
			Operator string          `json:"operator"`
			Shard    string          `json:"shard"`
			Message  string          `json:"message"`
			Record   json.RawMessage `json:"record"`
			Origin   *struct {
				Stream, Shard, Sequence string
			} `json:"origin"`
			DeadLetter *struct {
				Stream string `json:"stream"`
			} `json:"dead_letter"`
		} `json:"errors"`
	}
	if printed, err := getOrPrint(*server, path, *raw, &page); err != nil || printed {
		return err
	}
	if page.Total == 0 {
		fmt.Printf("job %s has had no errors\n", pos[0])
		return nil
	}
	switch {
	case page.Total == 1:
		fmt.Println("1 error:")
	case int(page.Total) == len(page.Errors):
		fmt.Printf("%d errors:\n", page.Total)
	default:
		fmt.Printf("%d errors in all; the newest %d:\n", page.Total, len(page.Errors))
	}
	for _, e := range page.Errors {
		fmt.Printf("\n%s  operator %s", e.Time, e.Operator)
		if e.Origin != nil {
			fmt.Printf("  record %s %s %s", e.Origin.Stream, e.Origin.Shard, e.Origin.Sequence)
		}
		if e.DeadLetter != nil {
			fmt.Printf("  → dead letters in %s", e.DeadLetter.Stream)
		}
		fmt.Printf("\n  %s\n", e.Message)
		if len(e.Record) > 0 && string(e.Record) != "null" {
			fmt.Printf("  record: %s\n", e.Record)
		}
	}
	return nil
}

func jobsRestart(args []string) error {
	fs := newFlags("jobs restart", "jobs restart ID (--checkpoint EPOCH | --savepoint NAME | --from-beginning)",
		"Starts a stopped, failed or finished job again from one of its checkpoints (see `runnel jobs checkpoints ID`) or from a savepoint (see `runnel jobs savepoints`); a job on Kafka workers (a cluster job) has neither and starts over with --from-beginning. A running job must be stopped first.")
	server := addServerFlag(fs)
	cp := fs.String("checkpoint", "", "the checkpoint's epoch")
	sp := fs.String("savepoint", "", "the savepoint's name")
	begin := fs.Bool("from-beginning", false, "a cluster job: start over from the beginning of its source (its group's offsets and its repartition and changelog topics are deleted)")
	pos, err := parseInterspersed(fs, args, 1, "ID")
	if err != nil {
		return err
	}
	given := 0
	for _, set := range []bool{*cp != "", *sp != "", *begin} {
		if set {
			given++
		}
	}
	if given != 1 {
		return fmt.Errorf("%w: give one of --checkpoint EPOCH, --savepoint NAME or --from-beginning", errUsage)
	}
	if _, err := strconv.ParseUint(*cp, 10, 64); *cp != "" && err != nil {
		return fmt.Errorf("%w: --checkpoint %q is not an epoch number ('runnel jobs checkpoints %s' lists them)", errUsage, *cp, pos[0])
	}
	body := map[string]string{}
	switch {
	case *cp != "":
		body["checkpoint"] = *cp
	case *sp != "":
		body["savepoint"] = *sp
	default:
		body["from"] = "beginning"
	}
	var j jobInfo
	if err := newClient(*server).do("POST", "/api/v1/jobs/"+url.PathEscape(pos[0])+"/restart", body, &j); err != nil {
		return err
	}
	fmt.Printf("restarted job %s: %s\n", j.ID, j.State)
	return nil
}

func jobsDeploy(args []string) error {
	fs := newFlags("jobs deploy", "jobs deploy ID FILE [--from savepoint|none]",
		"Deploys a new job file over job ID (same name): takes a savepoint as the job stops and starts the new file from it, so its state and positions carry over. A change that does not fit the state (a stateful operator removed, renamed or of another kind) is refused before anything stops; --from none starts the new file from no state.")
	server := addServerFlag(fs)
	from := fs.String("from", "savepoint", "savepoint (carry the state over) or none")
	pos, src, err := parseWithJobFile(fs, args, 2, "ID FILE")
	if err != nil {
		return err
	}
	var out struct {
		ID        string `json:"id"`
		Savepoint string `json:"savepoint"`
	}
	path := "/api/v1/jobs/" + url.PathEscape(pos[0]) + "?from=" + url.QueryEscape(*from)
	if err := newClient(*server).doRaw("PUT", path, "application/yaml", src, &out); err != nil {
		return fmt.Errorf("%s: %w", pos[1], err)
	}
	if out.Savepoint != "" {
		fmt.Printf("deployed %s over job %s from savepoint %s\n", pos[1], out.ID, out.Savepoint)
	} else {
		fmt.Printf("deployed %s over job %s from no state\n", pos[1], out.ID)
	}
	return nil
}

func jobsDelete(args []string) error {
	fs := newFlags("jobs delete", "jobs delete ID",
		"Deletes a stopped, failed or finished job with its job file, state and checkpoints (its savepoints are kept). A running job must be stopped first.")
	return callOne(fs, addServerFlag(fs), args, "ID", "DELETE", "/api/v1/jobs/", "?purge=true", "deleted job")
}

// fmtRate is a rate column of the jobs list.
func fmtRate(v float64) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + "/s"
}
