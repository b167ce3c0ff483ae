package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/runnel-dev/runnel/internal/units"
)

func init() {
	register("jobs", "submit, list, inspect and stop jobs on a server", runJobs)
}

const jobsHelp = `Usage: runnel jobs <subcommand> [flags]

Subcommands:
  submit FILE     submit a job file (YAML or JSON); prints the job id, or every problem with its line
                  (--from-savepoint NAME starts it from a savepoint; --replace replaces a
                  stopped, failed or finished job of the same name)
  list            list jobs with their state
  get ID          show a job: state, watermark, per-operator counters (--json for raw)
  stop ID         stop a job at a last checkpoint (it stays stopped across server restarts;
                  --savepoint keeps that checkpoint as a savepoint and prints its name)
  resume ID       start a stopped or failed job again from its latest checkpoint
  output ID       the last rows a sink was given, one JSON value a line
                  (--sink S picks the sink, --follow keeps printing)
  checkpoints ID  a job's checkpoint history
  savepoint ID    take a savepoint of a running job; prints its name
  savepoints      list the server's savepoints
  preview FILE    run a job file on the last N records of its input, writing nothing, and print
                  each operator's rows and errors (--records N, default 1000)
  errors ID       a job's error history, newest first (--limit N)
  restart ID      start a stopped job again from a checkpoint (--checkpoint EPOCH) or a
                  savepoint (--savepoint NAME); a cluster job with --from-beginning
  deploy ID FILE  deploy a new job file over a job, carrying its state over from a savepoint
                  (--from none starts from no state)
  delete ID       delete a stopped job with its state and checkpoints

Every subcommand takes --server URL (default http://127.0.0.1:7070, env RUNNEL_SERVER) and,
for a server with auth on, --token TOKEN (env RUNNEL_TOKEN); each subcommand's
--help lists its flags.`

func runJobs(args []string) error {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprintln(helpOut(len(args) > 0), jobsHelp)
		if len(args) == 0 {
			return fmt.Errorf("%w: give a subcommand (listed above)", errUsage)
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
	case "resume":
		return jobsResume(args[1:])
	case "output":
		return jobsOutput(args[1:])
	case "checkpoints":
		return jobsCheckpoints(args[1:])
	case "savepoint":
		return jobsSavepoint(args[1:])
	case "savepoints":
		return jobsSavepoints(args[1:])
	case "preview":
		return jobsPreview(args[1:])
	case "errors":
		return jobsErrors(args[1:])
	case "restart":
		return jobsRestart(args[1:])
	case "deploy":
		return jobsDeploy(args[1:])
	case "delete":
		return jobsDelete(args[1:])
	}
	return fmt.Errorf("%w: unknown subcommand %q\n\n%s", errUsage, args[0], jobsHelp)
}

func jobsSubmit(args []string) error {
	fs := newFlags("jobs submit", "jobs submit FILE", "Submits a job file to the server, which validates it, starts it and keeps it across restarts.")
	server := addServerFlag(fs)
	from := fs.String("from-savepoint", "", "start the job from the savepoint `NAME` (see runnel jobs savepoints)")
	replace := fs.Bool("replace", false, "replace a stopped, failed or finished job of the same name (its state and checkpoints go)")
	pos, src, err := parseWithJobFile(fs, args, 1, "FILE")
	if err != nil {
		return err
	}
	var out struct {
		ID string `json:"id"`
	}
	path := "/api/v1/jobs"
	q := url.Values{}
	if *from != "" {
		q.Set("savepoint", *from)
	}
	if *replace {
		q.Set("replace", "true")
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	if err := newClient(*server).doRaw("POST", path, "application/yaml", src, &out); err != nil {
		var ae *apiErr
		if errors.As(err, &ae) && ae.Code == "already_exists" {
			// The server's words are for its API's replace parameter.
			ae.Message = strings.Replace(ae.Message, "submit with replace", "submit again with --replace", 1)
		}
		return fmt.Errorf("%s: %w", pos[0], err)
	}
	fmt.Println(out.ID)
	return nil
}

type jobInfo struct {
	ID       string   `json:"id"`
	State    string   `json:"state"`
	Reason   string   `json:"reason"`
	Warnings []string `json:"warnings"`
	// Restarting is the attempt a failed job's restart strategy waits for.
	Restarting *struct {
		Attempt  int    `json:"attempt"`
		Attempts int    `json:"attempts"`
		At       string `json:"next_attempt_at"`
	} `json:"restarting"`
	Created   string  `json:"created"`
	Watermark *int64  `json:"watermark"`
	InPerS    float64 `json:"in_per_s"`
	OutPerS   float64 `json:"out_per_s"`
	UptimeS   float64 `json:"uptime_s"`
	Errors    int64   `json:"errors"`
	Operators []struct {
		ID                    string
		Kind                  string
		In, Out               int64
		Errors, Skipped, Late int64
		DeadLettered          int64 `json:"dead_lettered"`
		Stages                []struct {
			Operator        string
			Errors, Skipped int64
			DeadLettered    int64 `json:"dead_lettered"`
		} `json:"stages"`
	} `json:"operators"`
	Graph []struct {
		ID   string `json:"id"`
		Kind string `json:"kind"`
	} `json:"graph"`
}

func jobsList(args []string) error {
	var out struct {
		Jobs []jobInfo `json:"jobs"`
	}
	if err := getCommand("jobs list", "Lists the server's jobs.", "/api/v1/jobs", args, &out); err != nil {
		return err
	}
	if len(out.Jobs) == 0 {
		fmt.Println("no jobs: submit one with 'runnel jobs submit FILE'")
		return nil
	}
	tw := newTable("ID\tSTATE\tIN\tOUT\tUPTIME\tERRORS\tWATERMARK\tCREATED\tREASON")
	for _, j := range out.Jobs {
		up := "-"
		if j.UptimeS > 0 {
			up = (time.Duration(j.UptimeS) * time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", j.ID, j.State, fmtRate(j.InPerS), fmtRate(j.OutPerS), up, j.Errors,
			fmtWatermark(j.Watermark), j.Created, j.Reason)
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
	var j jobInfo
	if printed, err := getOrPrint(*server, "/api/v1/jobs/"+url.PathEscape(pos[0]), *raw, &j); err != nil || printed {
		return err
	}
	fmt.Printf("job %s  state %s  watermark %s\n", j.ID, j.State, fmtWatermark(j.Watermark))
	if j.Reason != "" {
		fmt.Printf("reason: %s\n", j.Reason)
	}
	if r := j.Restarting; r != nil {
		fmt.Printf("restarting: attempt %d of %d at %s\n", r.Attempt, r.Attempts, r.At)
	}
	for _, w := range j.Warnings {
		fmt.Printf("warning: %s\n", w)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	kinds := map[string]string{}
	for _, n := range j.Graph {
		kinds[n.ID] = n.Kind
	}
	kind := func(id, fallback string) string {
		if k, ok := kinds[id]; ok {
			return k
		}
		return fallback
	}
	// A chain of maps and filters runs fused in one task, reported once
	// with per-stage counts: one row per job-file operator, as the UI's
	// graph shows them (in on the first, out on the last).
	fmt.Fprintln(tw, "NODE\tKIND\tIN\tOUT\tERRORS\tSKIPPED\tDEAD-LETTERED\tLATE")
	dash := func(show bool, n int64) string {
		if !show {
			return "-"
		}
		return strconv.FormatInt(n, 10)
	}
	nodes := map[string]bool{}
	for _, o := range j.Operators {
		nodes[o.ID] = true
	}
	for _, o := range j.Operators {
		if len(o.Stages) < 2 {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n", o.ID, kind(o.ID, o.Kind), o.In, o.Out, o.Errors, o.Skipped, o.DeadLettered, o.Late)
			continue
		}
		for i, st := range o.Stages {
			k := kind(st.Operator, o.Kind)
			if st.Operator != o.ID && nodes[st.Operator] {
				// A keyed operator's key function, computed in the chain
				// before it; the operator has its own row.
				k = "key of " + k
			}
			fmt.Fprintf(tw, "%s\t%s (fused in %s)\t%s\t%s\t%d\t%d\t%d\t%d\n", st.Operator, k, o.ID,
				dash(i == 0, o.In), dash(i == len(o.Stages)-1, o.Out), st.Errors, st.Skipped, st.DeadLettered, 0)
		}
	}
	return tw.Flush()
}

func jobsStop(args []string) error {
	fs := newFlags("jobs stop", "jobs stop ID [--savepoint]", "Stops a job: its sources stop at a last checkpoint, which the sinks commit, and the rest drains.")
	server := addServerFlag(fs)
	savepoint := fs.Bool("savepoint", false, "keep the last checkpoint as a savepoint and print its name")
	pos, err := parseInterspersed(fs, args, 1, "ID")
	if err != nil {
		return err
	}
	path := "/api/v1/jobs/" + url.PathEscape(pos[0])
	if *savepoint {
		var out struct {
			Savepoint savepointInfo `json:"savepoint"`
		}
		if err := newClient(*server).do("DELETE", path+"?savepoint=true", nil, &out); err != nil {
			return err
		}
		fmt.Printf("stopped job %s at savepoint %s\n", strings.TrimSpace(pos[0]), out.Savepoint.Name)
		return nil
	}
	if err := newClient(*server).do("DELETE", path, nil, nil); err != nil {
		return err
	}
	fmt.Printf("stopped job %s\n", strings.TrimSpace(pos[0]))
	return nil
}

type savepointInfo struct {
	Name  string `json:"name"`
	Job   string `json:"job"`
	Epoch uint64 `json:"epoch"`
	Time  string `json:"time"`
	Size  int64  `json:"size_bytes"`
}

func jobsCheckpoints(args []string) error {
	fs := newFlags("jobs checkpoints", "jobs checkpoints ID", "Shows a job's checkpoints, oldest first: epoch, time, duration, how long sources were held, size, status.")
	server := addServerFlag(fs)
	pos, err := parseInterspersed(fs, args, 1, "ID")
	if err != nil {
		return err
	}
	var out struct {
		Checkpoints []struct {
			Epoch      uint64   `json:"epoch"`
			Time       string   `json:"time"`
			DurationMS float64  `json:"duration_ms"`
			HeldMS     *float64 `json:"held_ms"`
			Size       int64    `json:"size_bytes"`
			Status     string   `json:"status"`
			Savepoint  string   `json:"savepoint"`
			Error      string   `json:"error"`
		} `json:"checkpoints"`
	}
	if err := newClient(*server).do("GET", "/api/v1/jobs/"+url.PathEscape(pos[0])+"/checkpoints", nil, &out); err != nil {
		return err
	}
	if len(out.Checkpoints) == 0 {
		fmt.Printf("job %s has no checkpoints\n", pos[0])
		return nil
	}
	tw := newTable("EPOCH\tTIME\tDURATION\tHELD\tSIZE\tSTATUS")
	for _, c := range out.Checkpoints {
		held := "-"
		if c.HeldMS != nil {
			held = fmt.Sprintf("%.1fms", *c.HeldMS)
		}
		status := c.Status
		if c.Savepoint != "" {
			status += " (savepoint " + c.Savepoint + ")"
		}
		if c.Error != "" {
			status += ": " + c.Error
		}
		fmt.Fprintf(tw, "%d\t%s\t%.1fms\t%s\t%s\t%s\n", c.Epoch, c.Time, c.DurationMS, held, units.Bytes(c.Size), status)
	}
	return tw.Flush()
}

func jobsSavepoint(args []string) error {
	fs := newFlags("jobs savepoint", "jobs savepoint ID", "Takes a savepoint of a running job (it keeps running) and prints its name.")
	server := addServerFlag(fs)
	pos, err := parseInterspersed(fs, args, 1, "ID")
	if err != nil {
		return err
	}
	var sp savepointInfo
	if err := newClient(*server).do("POST", "/api/v1/jobs/"+url.PathEscape(pos[0])+"/savepoints", nil, &sp); err != nil {
		return err
	}
	fmt.Println(sp.Name)
	return nil
}

func jobsSavepoints(args []string) error {
	var out struct {
		Savepoints []savepointInfo `json:"savepoints"`
	}
	if err := getCommand("jobs savepoints", "Lists the server's savepoints, newest first.", "/api/v1/savepoints", args, &out); err != nil {
		return err
	}
	tw := newTable("NAME\tJOB\tEPOCH\tTIME\tSIZE")
	for _, s := range out.Savepoints {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.Name, s.Job, s.Epoch, s.Time, units.Bytes(s.Size))
	}
	return tw.Flush()
}
