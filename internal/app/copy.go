package app

import "github.com/blockstore/blockstore/index"

// Engine returns the index engine under the metrics wrapper, for callers
// that look for an optional capability by type assertion (blockstore copy
// looks for index.Exporter and index.Importer). Writes through it are not
// counted in the metrics.
func (a *App) Engine() index.Store { return a.baseIndex() }
