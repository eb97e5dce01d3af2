package results

import (
	"errors"
	"time"
)

// NewSpool creates a spool for one download in the local directory store
// (encrypted on its way to disk like every spool): a download is read back
// by the worker that wrote it, so it needs no shared storage.
func (s *DBStore) NewSpool() (*Spool, error) {
	if s.legacy == nil {
		return nil, errors.New("results: new spool: the database store has no local directory for downloads")
	}
	return s.legacy.NewSpool()
}

// PurgeTemporary removes the spools and partial writes older than cutoff
// from the local directory store, and returns how many it removed.
func (s *DBStore) PurgeTemporary(cutoff time.Time) (int, error) {
	if s.legacy == nil {
		return 0, nil
	}
	return s.legacy.PurgeTemporary(cutoff)
}
