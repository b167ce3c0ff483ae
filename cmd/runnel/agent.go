package main

import (
	"errors"
	"fmt"

	"github.com/aws/smithy-go"
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
	ctx, stop := untilInterrupted()
	defer stop()
	if err := agent.Run(ctx, cfg, *once, log); err != nil {
		return explainAgentErr(err, cfg, *config)
	}
	return nil
}

// explainAgentErr adds to an error that stopped the agent what to do about
// it when it is a flow's stream that does not exist or a server that
// cannot be reached.
func explainAgentErr(err error, cfg *agent.Config, config string) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "ResourceNotFoundException" {
		return fmt.Errorf("%w (create the stream with 'runnel streams create NAME', or name one that exists in %s)", err, config)
	}
	var oe interface{ Timeout() bool }
	if cfg.Server != "" && errors.As(err, &oe) {
		return fmt.Errorf("cannot reach the server at %s (start one with 'runnel serve', or fix server: in %s): %w", cfg.Server, config, err)
	}
	return err
}
