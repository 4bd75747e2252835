package bench

import "slices"

// targetNotes adds what the reader needs to read the table: what MinIO
// alone did in each section, and the issues' targets.
func (h *harness) targetNotes() {
	ran := func(s string) bool { return len(h.opt.Only) == 0 || slices.Contains(h.opt.Only, s) }
	r := h.rep
	r.Notes = append(r.Notes, "Client and servers share the machine's cores over loopback; servers run as `blockstore serve` with default flags (request logs at info, drained by the harness), each run on fresh stores (new data directory; new database and bucket).")
	if ran("transfer") {
		r.Notes = append(r.Notes, "transfer: `POST /assets` streams the bytes of a new asset (the server hashes them; on S3 they go to a temporary key that is copied to the final key once the hash is known); `PUT /blobs/{hash}` sends bytes whose hash the client computed beforehand (the importer's way: straight to the final key); reads are `GET /blobs/{hash}`. MinIO alone is minio-go PutObject/GetObject with its defaults (objects over 16 MiB go multipart in 16 MiB parts, 4 at once) against the same MinIO server that holds the PG+MinIO blobs; storing bytes is one operation there, so its PutObject figures stand in both the POST and the PUT rows. Targets (issue 4): PUT of 256 MiB ≥ 900 MB/s; of 1 MiB ≥ 250 MB/s with 1 client and ≥ 500 MB/s with 8; GET from the page cache ≥ 2 GB/s (256 MiB) and ≥ 1.2 GB/s (1 MiB).")
	}
	if ran("peers") {
		r.Notes = append(r.Notes, "transfer peers: one client, each target on fresh blobs in every run, every GET right after the PUTs of its blobs; Blockstore is `PUT`/`GET /api/v1/blobs/{hash}` (POST /assets for the hash-unknown row), bazel-remote "+BazelRemoteVersion+" (`--storage_mode uncompressed`; it neither fsyncs nor verifies) `PUT`/`GET /cas/<sha256>`, MinIO alone minio-go PutObject/GetObject. Server CPU is utime+stime from /proc/PID/stat of the server processes (Blockstore's; with MinIO's for PG+MinIO, PostgreSQL's own not counted) over the bytes moved. Goals (issue 15) stand beside the ratios they apply to.")
	}
	if ran("units") {
		r.Notes = append(r.Notes, "units: MinIO alone stores the same OLX bytes as objects (no links, no index, no fsync of an index) and reads them one GET each; its /resolve figure is one GET per unit from 16 clients, which is what loading a course costs without /resolve. The units' limit is the rate of single 4 KiB write+fdatasync operations (one synced WAL append); several clients let commits share a sync, and OLX up to 64 KiB is stored in the index with its version (one synced batch on the embedded default, no blob file), so the embedded rate can exceed it. CPU per create is utime+stime from /proc/PID/stat over the creates: the server process, every local PostgreSQL process (backends, WAL writer, checkpointer), and the bench process whose clients send them; all share the machine's cores, so a goal of R creates a second leaves them cores ÷ R between them (the last row). Its limit is the CPU of the same create request POSTed to a bare net/http server that reads it and answers 201 with 1 KiB, clients and server in one process: the floor under any HTTP create here.")
	}
	if ran("import") {
		r.Notes = append(r.Notes, "import: the real `blockstore import --json` command against the server; the re-import must upload 0 bytes. Target (issue 7): re-import ≤ 1.25 × local read+hash with the same number of workers.")
	}
	if ran("gc") {
		r.Notes = append(r.Notes, "gc: the world is written straight into the stores without fsync: blobs in a directory, registry rows, unit versions created two months ago; the garbage is half versions past retention (720h) with their blobs, a quarter registered blobs nothing names, a quarter stray files with no registry row, fresh for every sweep. The figure is the wall time of `blockstore gc --grace 0s --json` (a new process, opening the stores) and its peak RSS (VmHWM, read every 5 ms while it runs). On PostgreSQL the database server's own memory is not counted. Target (issue 6): 1,000,000 blobs in < 60 s and < 256 MiB embedded.")
	}
	if ran("stream") {
		r.Notes = append(r.Notes, "memory: a fresh server's VmHWM (/proc/PID/status) after one client streamed the asset in (POST /api/v1/assets), then after it streamed it back out (GET /api/v1/assets/{uuid}/content; VmHWM keeps the peak of both). Targets (issues 4 and 15): flat, under 100 MiB, for the upload and the download.")
	}
}
