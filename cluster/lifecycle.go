package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/runnel-dev/runnel/jobs"
)

// The lifecycle of a cluster job beyond submit, stop and delete. Its
// state is its group's committed offsets and its changelog topics, so:
//
//   - Resume starts a stopped job again where its workers left it.
//   - Redeploy replaces the job file of a job whose workers have all left
//     its group: stop all workers, change the job, start them again. An
//     operator that keeps its id and kind keeps its state (changelog
//     topics are named by operator id).
//   - Restart (fresh) starts the job over from the beginning of its
//     source, as a new group: it deletes the group (its offsets) and the
//     job's repartition and changelog topics once every worker has left.
//
// Checkpoints and savepoints do not exist for cluster jobs; ErrLifecycle
// marks what a cluster job refuses, saying why.

// ErrLifecycle marks a lifecycle request a cluster job cannot follow.
var ErrLifecycle = errors.New("cluster: not for cluster jobs")

// ErrWorkersRemain marks a redeploy or restart refused because workers
// still run the job (started by hand with `runnel worker`, or servers
// that have not stopped theirs yet).
var ErrWorkersRemain = errors.New("cluster: workers still run the job")

// leaveWait bounds how long Redeploy and Restart wait for every worker to
// leave the job's group after the job is marked stopped.
const leaveWait = 30 * time.Second

// Resume marks a stopped job running again: every server starts its
// worker, which continues from the group's committed offsets and the
// changelog topics.
func (r *Registry) Resume(ctx context.Context, name string) (jobs.Info, error) {
	e, err := r.entryOf(name)
	if err != nil {
		return jobs.Info{}, err
	}
	if e.State == "running" {
		return jobs.Info{}, fmt.Errorf("%w: %q runs on the cluster already", jobs.ErrRunning, name)
	}
	e.State, e.At, e.By = "running", time.Now().UTC(), r.cfg.Worker.ID
	if err := r.write(ctx, name, &e); err != nil {
		return jobs.Info{}, err
	}
	in, _ := r.Info(name)
	return in, nil
}

// Redeploy runs src (nil: the job's file as it is) in place of the job:
// it marks the job stopped, waits until every worker has left its group,
// then, with fresh, deletes the group and the job's internal topics (the
// job starts over from the beginning of its source), and marks it running
// with src. Without fresh the state is kept: the group's offsets and the
// changelogs of the operators that keep their ids.
func (r *Registry) Redeploy(ctx context.Context, name string, src []byte, fresh bool) (jobs.Info, error) {
	e, err := r.entryOf(name)
	if err != nil {
		return jobs.Info{}, err
	}
	old, err := jobs.Parse([]byte(e.File))
	if err != nil {
		return jobs.Info{}, fmt.Errorf("cluster: job %s: its file in %s does not parse: %w", name, JobsTopic, err)
	}
	spec := old
	if src == nil {
		src = []byte(e.File)
	} else if spec, err = jobs.Parse(src); err != nil {
		return jobs.Info{}, err
	}
	if spec.Name != name {
		return jobs.Info{}, fmt.Errorf("%w: the file names job %q, not %q", jobs.ErrNameMismatch, spec.Name, name)
	}
	if _, err := r.planOf(spec); err != nil {
		return jobs.Info{}, err
	}
	if e.State == "running" {
		stopped := e
		stopped.State, stopped.At, stopped.By = "stopped", time.Now().UTC(), r.cfg.Worker.ID
		if err := r.write(ctx, name, &stopped); err != nil {
			return jobs.Info{}, err
		}
	}
	adm := kadm.NewClient(r.cl)
	if err := waitGroupEmpty(ctx, adm, name); err != nil {
		return jobs.Info{}, err
	}
	if fresh {
		plan, err := r.planOf(old)
		if err != nil {
			return jobs.Info{}, fmt.Errorf("cluster: job %s: plan its topics: %w", name, err)
		}
		if err := dropJobState(ctx, adm, name, plan); err != nil {
			return jobs.Info{}, err
		}
	}
	now := time.Now().UTC()
	next := entry{Name: name, File: string(src), State: "running", Created: e.Created, At: now, By: r.cfg.Worker.ID}
	if err := r.write(ctx, name, &next); err != nil {
		return jobs.Info{}, err
	}
	in, _ := r.Info(name)
	return in, nil
}

func (r *Registry) entryOf(name string) (entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	j := r.mu.jobs[name]
	if j == nil {
		return entry{}, fmt.Errorf("%w: %q", jobs.ErrJobNotFound, name)
	}
	return j.entry, nil
}

// waitGroupEmpty waits until the job's group has no member.
func waitGroupEmpty(ctx context.Context, adm *kadm.Client, job string) error {
	group := GroupName(job)
	deadline := time.Now().Add(leaveWait)
	for {
		ds, err := adm.DescribeGroups(ctx, group)
		var members []string
		if err == nil {
			d := ds[group]
			if d.Err != nil && !errors.Is(d.Err, kerr.GroupIDNotFound) {
				err = d.Err
			}
			for _, m := range d.Members {
				members = append(members, workerOf(job, m.ClientID))
			}
		}
		if err == nil && len(members) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("cluster: job %s is stopped, but its group %s could not be described: %w", job, group, err)
			}
			slices.Sort(members)
			return fmt.Errorf("%w: job %s is stopped, but workers %s are still in its group %s after %s: stop the `runnel worker` processes that run it, then try again (resume it to run it as it was)",
				ErrWorkersRemain, job, strings.Join(members, ", "), group, leaveWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// dropJobState deletes the job's group (its committed offsets) and the
// internal topics of its plan: the job starts over, as a new group.
func dropJobState(ctx context.Context, adm *kadm.Client, job string, plan *Plan) error {
	resp, err := adm.DeleteGroup(ctx, GroupName(job))
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return fmt.Errorf("cluster: job %s: delete group %s: %w", job, GroupName(job), err)
	}
	repart, logs := plan.Topics()
	topics := append(repart, logs...)
	if len(topics) == 0 {
		return nil
	}
	del, err := adm.DeleteTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("cluster: job %s: delete its internal topics: %w", job, err)
	}
	for _, d := range del.Sorted() {
		if d.Err != nil && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("cluster: job %s: delete topic %s: %w", job, d.Topic, d.Err)
		}
	}
	return nil
}

// planOf checks that workers can run spec and returns its plan.
func (r *Registry) planOf(spec *jobs.Spec) (*Plan, error) {
	cfg := r.cfg.Worker
	cfg.Spec = spec
	w, err := New(cfg)
	if err != nil {
		return nil, err
	}
	w.closeSinks()
	return w.plan, nil
}
