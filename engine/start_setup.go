package engine

import (
	"context"
	"errors"
	"fmt"
)

// setupContext is the context of StartSetup's setup steps: ctx, canceled
// also when setup is (with setup's cause), until done is called.
func setupContext(ctx, setup context.Context) (sctx context.Context, done func()) {
	sctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(setup, func() { cancel(context.Cause(setup)) })
	return sctx, func() {
		stop()
		cancel(nil)
	}
}

// setupErr is err of a setup step, with the cause of the setup's cancel
// when it was cut short (a call canceled says only "context canceled").
func setupErr(sctx context.Context, err error) error {
	if c := context.Cause(sctx); c != nil && !errors.Is(err, c) {
		return fmt.Errorf("%w: %w", c, err)
	}
	return err
}
