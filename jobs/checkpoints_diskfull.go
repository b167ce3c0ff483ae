package jobs

import (
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/runnel-dev/runnel/state"
)

// noteDiskFull makes a checkpoint that failed at begin because the disk is
// full a warning of the job, kept (with the time of the first such
// failure) until a checkpoint succeeds.
func (cs *ckptState) noteDiskFull(err error, begin time.Time) {
	if !errors.Is(err, state.ErrDiskFull) && !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
		return
	}
	if cs.diskFull.Load() != nil {
		return
	}
	w := fmt.Sprintf("the disk is full: checkpoints fail since %s, so a restart replays from the last complete one; they resume by themselves once space is freed (%v)",
		begin.UTC().Format(time.RFC3339), err)
	cs.diskFull.Store(&w)
}

// jobWarnings returns the warnings of the job's run: those of its restore
// and, while checkpoints fail for want of space, that one.
func (cs *ckptState) jobWarnings() []string {
	out := slices.Clone(cs.warnings)
	if w := cs.diskFull.Load(); w != nil {
		out = append(out, *w)
	}
	return out
}
