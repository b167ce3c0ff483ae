package jobs

import (
	"errors"
	"testing"
)

// TestJobOwner: a job submitted with an owner is replaced, deployed over
// and deleted by that owner only, before and after a restart of the
// manager; others (a user, another owner) get ErrJobOwned and the job
// stays as it was. Stop and resume stay open to all.
func TestJobOwner(t *testing.T) {
	st, dir, log := managerStore(t)
	m := openManager(t, st, dir, log)
	const owner = "arn:aws:kinesis:us-east-1:000000000000:channel/c"
	if _, err := m.SubmitWith([]byte(genJob), SubmitOptions{Owner: owner}); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		if err := m.Stop("gen"); err != nil {
			t.Fatalf("round %d: stop by a user: %v", round, err)
		}
		for _, who := range []string{"", "arn:aws:kinesis:us-east-1:000000000000:channel/other"} {
			if _, err := m.SubmitWith([]byte(genJob), SubmitOptions{Replace: true, Owner: who}); !errors.Is(err, ErrJobOwned) {
				t.Fatalf("round %d: replace by %q: %v, want ErrJobOwned", round, who, err)
			}
			if _, err := m.DeployOwned("gen", []byte(genJob), DeployNone, who); !errors.Is(err, ErrJobOwned) {
				t.Fatalf("round %d: deploy by %q: %v, want ErrJobOwned", round, who, err)
			}
			if err := m.DeleteOwned("gen", who); !errors.Is(err, ErrJobOwned) {
				t.Fatalf("round %d: delete by %q: %v, want ErrJobOwned", round, who, err)
			}
		}
		in, err := m.Get("gen")
		if err != nil || in.Owner != owner || in.State != StateStopped {
			t.Fatalf("round %d: the job is %+v, %v", round, in, err)
		}
		if round == 0 {
			m.Close()
			m = openManager(t, st, dir, log)
		}
	}
	// The owner replaces it, deploys over it (the new job keeps the
	// owner) and deletes it; then the name is anyone's.
	if _, err := m.SubmitWith([]byte(genJob), SubmitOptions{Replace: true, Owner: owner}); err != nil {
		t.Fatalf("replace by the owner: %v", err)
	}
	if _, err := m.DeployOwned("gen", []byte(genJob), DeploySavepoint, owner); err != nil {
		t.Fatalf("deploy by the owner: %v", err)
	}
	if in, err := m.Get("gen"); err != nil || in.Owner != owner || in.State != "running" {
		t.Fatalf("after the owner's deploy: %+v, %v", in, err)
	}
	if err := m.Stop("gen"); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteOwned("gen", owner); err != nil {
		t.Fatalf("delete by the owner: %v", err)
	}
	if _, err := m.Submit([]byte(genJob)); err != nil {
		t.Fatalf("a user's job of the deleted job's name: %v", err)
	}
	if err := m.Stop("gen"); err != nil {
		t.Fatal(err)
	}
	if err := m.DeleteOwned("gen", owner); !errors.Is(err, ErrJobOwned) {
		t.Fatalf("an owner deleting a user's job: %v, want ErrJobOwned", err)
	}
	m.Close()
}
