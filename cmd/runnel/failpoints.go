package main

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
)

// failpointsFromEnv reads RUNNEL_FAILPOINTS, a crash-testing aid: a
// comma-separated list of STEP=PROBABILITY (checkpoint steps: aligned,
// before-snapshot, after-snapshot, before-manifest, after-manifest,
// before-prune, before-commit, after-commit; job directory steps:
// job-dir-aside, job-dir-ready, job-dir-old-aside, job-dir-installed,
// restart-state-aside, savepoint-exported). At each such step the process
// kills itself with SIGKILL with that probability, so a test can crash the
// server at exact points of a checkpoint or of a job directory's change.
// Unset, nothing happens.
func failpointsFromEnv(log *slog.Logger) (func(string) error, error) {
	spec := os.Getenv("RUNNEL_FAILPOINTS")
	if spec == "" {
		return nil, nil
	}
	probs := map[string]float64{}
	for _, part := range strings.Split(spec, ",") {
		step, p, ok := strings.Cut(strings.TrimSpace(part), "=")
		f, err := strconv.ParseFloat(p, 64)
		if !ok || err != nil || f < 0 || f > 1 {
			return nil, fmt.Errorf("%w: RUNNEL_FAILPOINTS: %q is not STEP=PROBABILITY (0..1)", errUsage, part)
		}
		probs[step] = f
	}
	log.Warn("crash failpoints armed: the server will kill itself during checkpoints", "failpoints", spec)
	return func(step string) error {
		if p := probs[step]; p > 0 && rand.Float64() < p {
			fmt.Fprintf(os.Stderr, "failpoint %s: killing the process\n", step)
			killSelf()
			select {} // the signal is on its way
		}
		return nil
	}, nil
}
