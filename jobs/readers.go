package jobs

import "sort"

// Readers maps each stream that jobs read to those jobs' ids, sorted:
// whatever their state, as a stream's readers are the jobs that would
// miss it.
func (m *Manager) Readers() map[string][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]string{}
	for id, j := range m.mu.jobs {
		if name := j.Spec.Source.stream(); name != "" {
			out[name] = append(out[name], id)
		}
	}
	for _, ids := range out {
		sort.Strings(ids)
	}
	return out
}
