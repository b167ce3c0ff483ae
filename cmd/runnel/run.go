package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/streams"
)

func init() {
	register("run", "run a job file in-process to completion (bounded sources), no server", runRun)
}

func runRun(args []string) error {
	fs := newFlags("run", "run FILE [--data DIR]", `
Runs a job file in this process, with the same runtime as the server, until its sources end
(file sources, or a generator with a count) — then every window fires and the sinks flush.
A log sink prints each row to stdout as a line: the sink's id, ": " and the row as JSON.
Stream sources and sinks need --data (a data directory not used by a running server).
Ctrl-C stops the job cleanly.`)
	data := fs.String("data", "", "data directory for stream sources and sinks")
	pos, src, err := parseWithJobFile(fs, args, 1, "FILE")
	if err != nil {
		return err
	}
	spec, err := jobs.Parse(src)
	if err != nil {
		return fmt.Errorf("%s:\n%w", pos[0], err)
	}
	env := jobs.Env{Log: os.Stdout}
	if *data != "" {
		st, err := streams.Open(*data, streams.Options{Logger: quietLogger()})
		if err != nil {
			return err
		}
		defer st.Close()
		env.Store = st
	}
	built, err := jobs.Build(spec, env)
	if err != nil {
		return err
	}
	ctx, stop := untilInterrupted()
	defer stop()
	st, err := engine.Run(ctx, built.Graph, engine.Options{})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "job %s %s\n", st.Name, st.State)
	for _, o := range st.Operators {
		fmt.Fprintf(os.Stderr, "  %-16s %-8s in %-9d out %-9d errors %d skipped %d late %d\n", o.ID, o.Kind, o.In, o.Out, o.Errors, o.Skipped, o.Late)
	}
	if st.State == engine.Failed {
		return fmt.Errorf("job failed: %s", st.Reason)
	}
	return nil
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
