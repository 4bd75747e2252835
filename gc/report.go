package gc

import "time"

// Status is where a sweep is.
type Status string

const (
	StatusRunning   Status = "running"
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
)

// Report is what a sweep did (or, in a dry run, would do). Its JSON is the
// API's report (API.md, "Garbage collection") with more fields beside.
type Report struct {
	ID         string     `json:"id"`
	DryRun     bool       `json:"dry_run"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"` // null while the sweep runs
	// VersionsDeleted are published versions removed by retention.
	VersionsDeleted int64 `json:"versions_deleted"`
	// AssetsDeleted are orphaned assets removed with all their versions.
	AssetsDeleted int64 `json:"assets_deleted"`
	// BlobsDeleted and BytesFreed count blobs removed from the blob store and
	// the registry (a dead sweep's leftovers included).
	BlobsDeleted int64 `json:"blobs_deleted"`
	BytesFreed   int64 `json:"bytes_freed"`
	// BlobsKept are the blobs the sweep looked at and kept: referenced,
	// leased, or written within the grace.
	BlobsKept int64   `json:"blobs_kept"`
	Phases    []Phase `json:"phases"`

	Status Status `json:"status"`
	Error  string `json:"error,omitempty"`
	// Retention and grace the sweep used, as Go durations ("720h0m0s").
	Retention string `json:"retention"`
	Grace     string `json:"grace"`
	// Temporary data the blob store removed, and expired idempotency records.
	TempItemsDeleted   int64 `json:"temp_items_deleted"`
	TempBytesFreed     int64 `json:"temp_bytes_freed"`
	IdempotencyDeleted int64 `json:"idempotency_records_deleted"`
	// Progress is set while the sweep runs.
	Progress *Progress `json:"progress,omitempty"`
	// Notes say what the figures leave out (a dry run's limits, anomalies).
	Notes []string `json:"notes,omitempty"`
}

// Phase is one step of a sweep and what it removed (or would remove).
type Phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	// Items: versions (retention), assets (orphans), blobs (resume, mark:
	// the candidates, sweep: those deleted), temporary items and
	// idempotency records (cleanup).
	Items int64 `json:"items"`
	Bytes int64 `json:"bytes"`
}

// Progress says where a running sweep is.
type Progress struct {
	Phase string `json:"phase"`
	// Items handled so far in this phase (versions, assets or blobs).
	Items int64 `json:"items"`
}

// Phase names, in the order a sweep runs them.
const (
	PhaseRetention = "retention" // delete versions past retention
	PhaseOrphans   = "orphans"   // delete orphaned assets
	PhaseResume    = "resume"    // finish the deletions a dead sweep left
	PhaseMark      = "mark"      // plan: join the registry, the references and the blob store
	PhaseSweep     = "sweep"     // claim, delete and forget the candidates
	PhaseCleanup   = "cleanup"   // temporary data, expired idempotency records
)
