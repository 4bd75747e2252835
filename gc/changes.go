package gc

import (
	"context"
	"fmt"

	"github.com/blockstore/blockstore/index"
)

// pruneChanges drops the change feed's history older than the change
// retention, when the index keeps a feed (index.ChangePruner). A real
// sweep's cleanup runs it; a dry run does not. Followers whose cursor
// falls in the dropped history get index.ErrGone and reload.
func (s *sweep) pruneChanges(ctx context.Context) error {
	p, ok := s.c.idx.(index.ChangePruner)
	if !ok {
		return nil
	}
	retention := s.c.opt.ChangeRetention
	if retention <= 0 {
		retention = index.DefaultChangeRetention
	}
	n, err := p.PruneChanges(ctx, s.c.now().Add(-retention))
	if err != nil {
		return fmt.Errorf("prune the change feed: %w", err)
	}
	if n > 0 {
		s.c.log.Info("pruned the change feed", "changes", n, "retention", retention)
	}
	return nil
}
