package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

func init() {
	register("jobs", "submit, list, inspect and stop jobs on a server", runJobs)
}

const jobsHelp = `Usage: runnel jobs <subcommand> [flags]

Subcommands:
  submit FILE     submit a job file (YAML or JSON); prints the job id, or every problem with its line
  list            list jobs with their state
  get ID          show a job: state, watermark, per-operator counters (--json for raw)
  stop ID         stop a job (it stays stopped across server restarts)

Every subcommand takes --server URL (default http://127.0.0.1:7070, env RUNNEL_SERVER).`

func runJobs(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(os.Stderr, jobsHelp)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	switch args[0] {
	case "submit":
		return jobsSubmit(args[1:])
	case "list":
		return jobsList(args[1:])
	case "get":
		return jobsGet(args[1:])
	case "stop":
		return jobsStop(args[1:])
	}
	return fmt.Errorf("%w: unknown subcommand %q\n\n%s", errUsage, args[0], jobsHelp)
}

func jobsSubmit(args []string) error {
	fs := newFlags("jobs submit", "jobs submit FILE", "Submits a job file to the server, which validates it, starts it and keeps it across restarts.")
	server := addServerFlag(fs)
	pos, err := parseInterspersed(fs, args, 1, "FILE")
	if err != nil {
		return err
	}
	src, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := newClient(*server).doRaw("POST", "/api/v1/jobs", "application/yaml", src, &out); err != nil {
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	fmt.Println(out.ID)
	return nil
}

type jobInfo struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	Reason    string `json:"reason"`
	Created   string `json:"created"`
	Watermark *int64 `json:"watermark"`
	Operators []struct {
		ID                    string
		Kind                  string
		In, Out               int64
		Errors, Skipped, Late int64
	} `json:"operators"`
}

func jobsList(args []string) error {
	fs := newFlags("jobs list", "jobs list", "Lists the server's jobs.")
	server := addServerFlag(fs)
	if _, err := parseInterspersed(fs, args, 0, ""); err != nil {
		return err
	}
	var out struct {
		Jobs []jobInfo `json:"jobs"`
	}
	if err := newClient(*server).do("GET", "/api/v1/jobs", nil, &out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tWATERMARK\tCREATED\tREASON")
	for _, j := range out.Jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", j.ID, j.State, fmtWatermark(j.Watermark), j.Created, j.Reason)
	}
	return tw.Flush()
}

func fmtWatermark(wm *int64) string {
	if wm == nil {
		return "-"
	}
	if *wm > 1<<62 {
		return "end"
	}
	return time.UnixMilli(*wm).UTC().Format(time.RFC3339)
}

func jobsGet(args []string) error {
	fs := newFlags("jobs get", "jobs get ID [--json]", "Shows a job: state, watermark and per-operator counters.")
	server := addServerFlag(fs)
	raw := fs.Bool("json", false, "print the raw JSON (includes the job file)")
	pos, err := parseInterspersed(fs, args, 1, "ID")
	if err != nil {
		return err
	}
	var v json.RawMessage
	if err := newClient(*server).do("GET", "/api/v1/jobs/"+url.PathEscape(pos[0]), nil, &v); err != nil {
		return err
	}
	if *raw {
		fmt.Println(string(v))
		return nil
	}
	var j jobInfo
	if err := json.Unmarshal(v, &j); err != nil {
		return err
	}
	fmt.Printf("job %s  state %s  watermark %s\n", j.ID, j.State, fmtWatermark(j.Watermark))
	if j.Reason != "" {
		fmt.Printf("reason: %s\n", j.Reason)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tKIND\tIN\tOUT\tERRORS\tSKIPPED\tLATE")
	for _, o := range j.Operators {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\n", o.ID, o.Kind, o.In, o.Out, o.Errors, o.Skipped, o.Late)
	}
	return tw.Flush()
}

func jobsStop(args []string) error {
	fs := newFlags("jobs stop", "jobs stop ID", "Stops a job: its sources stop, what is in flight drains, its sinks flush.")
	server := addServerFlag(fs)
	pos, err := parseInterspersed(fs, args, 1, "ID")
	if err != nil {
		return err
	}
	if err := newClient(*server).do("DELETE", "/api/v1/jobs/"+url.PathEscape(pos[0]), nil, nil); err != nil {
		return err
	}
	fmt.Printf("stopped job %s\n", strings.TrimSpace(pos[0]))
	return nil
}
