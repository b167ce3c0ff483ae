package jobs

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestRestartLaterAfterServerRestart: a job found failed on disk by the
// server's start (its countdown lost) is handed to its strategy again by
// RestartLater, from attempt 1; once its attempts are used up (also as
// read from disk) RestartLater schedules nothing; a job without a
// strategy is an error.
func TestRestartLaterAfterServerRestart(t *testing.T) {
	st, dir, log := managerStore(t)
	m := openManager(t, st, dir, log)
	if _, err := m.Submit([]byte(alwaysFails + "restart: {strategy: fixed-delay, delay: 1h, attempts: 2}\n")); err != nil {
		t.Fatal(err)
	}
	if !testutil.Within(20*time.Second, func() bool { info, _ := m.Get("boom"); return info.Restarting != nil }) {
		t.Fatal("no restart pending after 20s")
	}
	if ok, err := m.RestartLater("boom"); ok || err != nil {
		t.Fatalf("RestartLater with an attempt pending: %v, %v; want false", ok, err)
	}
	m.Close()
	m = openManager(t, st, dir, log)
	if info, _ := m.Get("boom"); info.Restarting != nil {
		t.Fatalf("a countdown after the server's restart: %+v", info.Restarting)
	}
	if ok, err := m.RestartLater("boom"); !ok || err != nil {
		t.Fatalf("RestartLater of a job failed on disk: %v, %v; want true", ok, err)
	}
	if info, _ := m.Get("boom"); info.State != "failed" || info.Restarting == nil || info.Restarting.Attempt != 1 {
		t.Fatalf("after RestartLater: %s restarting %+v, want attempt 1 pending", info.State, info.Restarting)
	}
	// The attempts used up (in memory), RestartLater says so in the
	// reason, on disk too.
	j, _ := m.job("boom")
	j.restarts.reset()
	j.restarts.mu.Lock()
	j.restarts.failures = 2
	j.restarts.mu.Unlock()
	if ok, err := m.RestartLater("boom"); ok || err != nil {
		t.Fatalf("RestartLater with the attempts used up: %v, %v; want false", ok, err)
	}
	if info, _ := m.Get("boom"); !RestartsUsedUp(info.Reason) || info.Restarting != nil {
		t.Fatalf("used up: %q restarting %+v", info.Reason, info.Restarting)
	}
	m.Close()
	m = openManager(t, st, dir, log)
	defer m.Close()
	if ok, err := m.RestartLater("boom"); ok || err != nil {
		t.Fatalf("RestartLater of a job whose attempts were used up before the server's restart: %v, %v; want false", ok, err)
	}
	if _, err := m.Submit([]byte(strings.Replace(alwaysFails, "name: boom", "name: plain", 1))); err != nil {
		t.Fatal(err)
	}
	if _, err := m.RestartLater("plain"); err == nil {
		t.Fatal("RestartLater of a job without a restart strategy: no error")
	}
}

// TestGuardRestarts: a restart attempt the guard refuses is not made: the
// job stays failed, the guard's error in its reason, with no countdown.
func TestGuardRestarts(t *testing.T) {
	st, dir, log := managerStore(t)
	m := openManager(t, st, dir, log)
	defer m.Close()
	asked := make(chan string, 10)
	m.GuardRestarts(func(id, owner string) error {
		asked <- id + "/" + owner
		return errors.New("its channel was deleted")
	})
	if _, err := m.SubmitWith([]byte(alwaysFails+"restart: {strategy: fixed-delay, delay: 10ms, attempts: 5}\n"), SubmitOptions{Owner: "me"}); err != nil {
		t.Fatal(err)
	}
	var info Info
	if !testutil.Within(20*time.Second, func() bool {
		info, _ = m.Get("boom")
		return strings.Contains(info.Reason, "not restarted: its channel was deleted")
	}) {
		t.Fatalf("after 20s: %s %q restarting %+v", info.State, info.Reason, info.Restarting)
	}
	if got := <-asked; got != "boom/me" {
		t.Errorf("the guard was asked about %s, want boom/me", got)
	}
	if info.State != "failed" || info.Restarting != nil || len(asked) != 0 {
		t.Fatalf("refused: %s %q restarting %+v, %d more asks", info.State, info.Reason, info.Restarting, len(asked))
	}
}
