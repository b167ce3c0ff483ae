package jobs

import (
	"fmt"
	"os"
	"path/filepath"
)

// SavepointJobFile returns the job file of the job that took the savepoint
// name, as it was when the savepoint was taken (ErrSavepointNotFound when
// there is no such savepoint). The server authorises starting from a
// savepoint by the streams that file reads and writes.
func (m *Manager) SavepointJobFile(name string) ([]byte, error) {
	if !savepointName.MatchString(name) {
		return nil, fmt.Errorf("%w: %q is not a savepoint name", ErrSavepointNotFound, name)
	}
	b, err := os.ReadFile(filepath.Join(m.savepointPath(name), "job.yaml"))
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("%w: there is no savepoint named %s (GET /api/v1/savepoints lists them)", ErrSavepointNotFound, name)
	}
	return b, err
}
