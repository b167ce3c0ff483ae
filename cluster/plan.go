package cluster

import (
	"errors"
	"fmt"
	"strings"

	"github.com/runnel-dev/runnel/engine"
)

// ErrPlan marks a job graph the cluster cannot run.
var ErrPlan = errors.New("cluster: job cannot run on workers")

// Stage is a run of operators executed in the same tasks: the first stage
// (Index 0) in the tasks of the source's partitions, every later one in
// the tasks of its keyed operator's repartition topic.
type Stage struct {
	Index int
	// Keyed is the keyed operator that starts the stage ("" for stage 0).
	Keyed string
	// Input is the topic the stage reads: its repartition topic (stage 0
	// reads the source's topics).
	Input string
	// Nodes are the operators of the stage in topological order.
	Nodes []string
	// Sinks are the sinks fed by the stage's operators (or, in stage 0,
	// by the source).
	Sinks []string
}

// Plan is a job cut into stages at every key change.
type Plan struct {
	Job    string
	Stages []Stage
	// StageOf maps an operator or sink id to its stage index.
	StageOf map[string]int
	// Repartition maps a keyed operator to its repartition topic.
	Repartition map[string]string
	// Changelog maps a keyed operator to its changelog topic.
	Changelog map[string]string
}

// RepartitionTopic and ChangelogTopic name a job's internal topics.
func RepartitionTopic(job, op string) string { return job + "." + op + ".repartition" }

// ChangelogTopic names the changelog topic of a stateful operator.
func ChangelogTopic(job, op string) string { return job + "." + op + ".changelog" }

// Cut cuts g into stages: every keyed node starts a stage, and every other
// node and sink runs in the stage of its inputs, which must all be in one
// stage. Every keyed node gets a changelog topic; stateful says which nodes
// keep state, and only keyed ones may (their state moves with their task).
// A side output (late records, dead letters: "id:name") is read in the
// stage of the node that emits it, in the same transaction; a keyed
// reader gets it through its repartition topic like any input.
func Cut(g *engine.Graph, stateful func(id string) bool) (*Plan, error) {
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPlan, err)
	}
	if len(g.Sources) != 1 {
		return nil, fmt.Errorf("%w: job %s has %d sources; workers run jobs with one", ErrPlan, g.Name, len(g.Sources))
	}
	p := &Plan{Job: g.Name, StageOf: map[string]int{g.Sources[0].ID: 0},
		Repartition: map[string]string{}, Changelog: map[string]string{}}
	p.Stages = append(p.Stages, Stage{})
	stageOf := func(who string, inputs []string) (int, error) {
		s := -1
		for _, in := range inputs {
			id, _, _ := strings.Cut(in, ":")
			is, ok := p.StageOf[id]
			if !ok {
				return 0, fmt.Errorf("%w: %s reads %q, which comes later", ErrPlan, who, id)
			}
			if s >= 0 && is != s {
				return 0, fmt.Errorf("%w: %s unions inputs of different stages (%s); make it keyed", ErrPlan, who, strings.Join(inputs, ", "))
			}
			s = is
		}
		return s, nil
	}
	for _, n := range g.Nodes {
		if n.Key != nil {
			// A keyed node reads its repartition topic; its inputs may be
			// in any stages, they all write to that topic.
			if _, err := stageOf("operator "+n.ID, n.Inputs[:1]); err != nil {
				return nil, err
			}
			for _, in := range n.Inputs {
				if _, err := stageOf("operator "+n.ID, []string{in}); err != nil {
					return nil, err
				}
			}
			topic := RepartitionTopic(g.Name, n.ID)
			p.Repartition[n.ID] = topic
			p.StageOf[n.ID] = len(p.Stages)
			p.Stages = append(p.Stages, Stage{Index: len(p.Stages), Keyed: n.ID, Input: topic, Nodes: []string{n.ID}})
		} else {
			s, err := stageOf("operator "+n.ID, n.Inputs)
			if err != nil {
				return nil, err
			}
			p.StageOf[n.ID] = s
			p.Stages[s].Nodes = append(p.Stages[s].Nodes, n.ID)
		}
		switch {
		case n.Key != nil:
			// Every keyed operator's task keeps its watermark bookkeeping,
			// and its state if it has any, in its changelog.
			p.Changelog[n.ID] = ChangelogTopic(g.Name, n.ID)
		case stateful != nil && stateful(n.ID):
			return nil, fmt.Errorf("%w: operator %s keeps state but is not keyed", ErrPlan, n.ID)
		}
	}
	for _, s := range g.Sinks {
		st, err := stageOf("sink "+s.ID, s.Inputs)
		if err != nil {
			return nil, err
		}
		p.StageOf[s.ID] = st
		p.Stages[st].Sinks = append(p.Stages[st].Sinks, s.ID)
	}
	return p, nil
}

// Topics returns the internal topics of the plan: repartition topics, then
// changelog topics, in stage order.
func (p *Plan) Topics() (repartition, changelog []string) {
	for _, s := range p.Stages {
		if s.Keyed != "" {
			repartition = append(repartition, p.Repartition[s.Keyed])
		}
		for _, n := range s.Nodes {
			if t, ok := p.Changelog[n]; ok {
				changelog = append(changelog, t)
			}
		}
	}
	return repartition, changelog
}
