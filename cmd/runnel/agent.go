package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/runnel-dev/runnel/client/agent"
)

func init() {
	register("agent", "tail log files into streams (as the Kinesis Agent does)", runAgent)
}

func runAgent(args []string) error {
	fs := newFlags("agent", "agent --config FILE [--once]", `
Tails the files of each flow in the YAML config FILE and sends their lines, parsed into JSON
objects, to the flow's stream through the producer library: follows rotation by rename and by
copy-truncate, picks up new files, joins multi-line records, and checkpoints each file's
acknowledged offset so that a restart neither loses lines nor repeats more than the records
that were not yet acknowledged. --once delivers what the files hold now and exits. The config
keys are described in docs/clients.md; a minimal one:

  server: http://127.0.0.1:7070
  flows:
    - {files: /var/log/app/*.log, stream: logs, format: json}`)
	config := fs.String("config", "", "the agent's YAML configuration file")
	once := fs.Bool("once", false, "deliver what the files hold now, then exit")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if _, err := parseInterspersed(fs, args, 0, ""); err != nil {
		return err
	}
	if *config == "" {
		return fmt.Errorf("%w: --config FILE is required", errUsage)
	}
	log, err := newLogger(*logLevel, "text")
	if err != nil {
		return err
	}
	cfg, err := agent.Load(*config)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return agent.Run(ctx, cfg, *once, log)
}
