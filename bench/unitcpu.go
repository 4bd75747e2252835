package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/uuid"

	"github.com/blockstore/blockstore/client"
)

// The CPU a unit create costs, and what the commit goals leave for it: the
// server, the bench's clients and (PostgreSQL + MinIO) the database all run
// on the machine's cores, so a rate of R creates a second leaves at most
// cores ÷ R seconds of CPU to each. The bare HTTP exchange of the same
// request is the floor under any HTTP service's share of it.

// groupUnitCPU is the units section's group of CPU per create.
const groupUnitCPU = "units: CPU per create"

// Rows of groupUnitCPU.
const (
	cpuServer   = "server process (blockstore; minio for MinIO alone)"
	cpuDatabase = "PostgreSQL processes"
	cpuClients  = "bench process (its clients)"
	cpuAll      = "all of them"
	cpuLeft     = "what the goal leaves: cores ÷ (goal × 4 KiB write+fdatasync rate)"
)

// Goals of unit commits, as multiples of the 4 KiB write+fdatasync rate.
const (
	goalEmbeddedCommits = 2.0
	goalPostgresCommits = 0.5
)

// selfCPU is the CPU time (user and system) this process has used.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// postgresPIDs returns the processes of a PostgreSQL server on this machine
// (its backends, WAL writer and the rest): none when the database runs
// elsewhere.
func postgresPIDs() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err == nil && strings.HasPrefix(string(comm), "postgres") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cpuPerOp measures the CPU of the server process, of the local PostgreSQL
// (when db) and of this process while the operations of a phase run.
type cpuPerOp struct {
	server *cpuMeter
	self   float64
	// database holds the CPU seconds of each PostgreSQL process at the
	// start; nil when not measured.
	database map[int]float64
}

// postgresCPU returns the CPU seconds of every PostgreSQL process now.
func postgresCPU() map[int]float64 {
	out := make(map[int]float64)
	for _, pid := range postgresPIDs() {
		if t, _, err := cpuSeconds(pid); err == nil {
			out[pid] = t
		}
	}
	return out
}

// databaseUsed is the CPU the PostgreSQL processes used since the start:
// the pool opens backends as the clients come, so those born since count
// whole (one that ended in between is not counted).
func (c *cpuPerOp) databaseUsed() float64 {
	var used float64
	for pid, t := range postgresCPU() {
		used += t - c.database[pid]
	}
	return used
}

func startCPUPerOp(serverPID int, db bool) (*cpuPerOp, error) {
	c := &cpuPerOp{self: selfCPU()}
	var err error
	if c.server, err = newCPUMeter(serverPID); err != nil {
		return nil, err
	}
	if db {
		c.database = postgresCPU()
	}
	return c, nil
}

// record sets the rows of groupUnitCPU for n operations of target t.
func (c *cpuPerOp) record(h *harness, t Target, run, n int) error {
	per := func(s float64) float64 { return s / float64(n) * 1e6 }
	clients := per(selfCPU() - c.self)
	server, err := c.server.used()
	if err != nil {
		return err
	}
	all := per(server) + clients
	h.rep.set(groupUnitCPU, cpuServer, "µs", t, run, per(server))
	h.rep.set(groupUnitCPU, cpuClients, "µs", t, run, clients)
	if len(c.database) > 0 {
		db := per(c.databaseUsed())
		h.rep.set(groupUnitCPU, cpuDatabase, "µs", t, run, db)
		all += db
	}
	h.rep.set(groupUnitCPU, cpuAll, "µs", t, run, all)
	h.logf("units run %d, %s: CPU per create %.0f µs (server %.0f, clients %.0f)", run+1, t, all, per(server), clients)
	return nil
}

// unitCPULimits adds what the goals leave per create, from the run's 4 KiB
// write+fdatasync rates, and the bare HTTP exchange's CPU as the limit of
// the total.
func (h *harness) unitCPULimits(fdatasync, bare Series) {
	left := func(goal float64) Series {
		s := newSeries(len(fdatasync))
		for i, f := range fdatasync {
			s[i] = float64(runtime.NumCPU()) / (goal * f) * 1e6
		}
		return s
	}
	row := h.rep.row(groupUnitCPU, cpuLeft, "µs")
	row.Values[Embedded] = left(goalEmbeddedCommits)
	row.Values[Postgres] = left(goalPostgresCommits)
	h.rep.limit(groupUnitCPU, cpuAll, "µs", "bare Go HTTP POST of the same request", bare)
}

// createRequest is the body of a unit create as the client sends it: the
// OLX and five links.
func createRequest(olx string) ([]byte, error) {
	links := make([]client.Link, 0, unitLinks)
	for i := range unitLinks {
		kind := client.KindAsset
		if i >= 3 {
			kind = client.KindUnit
		}
		links = append(links, client.Link{Target: uuid.New(), Kind: kind})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(client.NewUnit{Collection: uuid.New(), Name: "vertical/000000.xml", OLX: olx, Links: links})
	return buf.Bytes(), err
}

// createAnswerBytes is about the size of a created unit's JSON answer
// with five links.
const createAnswerBytes = 1 << 10

// barePOST POSTs body requests times from clients goroutines to a plain
// net/http server on loopback in this process, which reads it and answers
// 201 with createAnswerBytes: the least an HTTP create can cost. It returns
// the rate and the CPU per request (client and server together).
func barePOST(ctx context.Context, requests, clients int, body []byte) (requestStats, float64, error) {
	answer := bytes.Repeat([]byte{'x'}, createAnswerBytes)
	base, hc, stop, err := bareLoopback(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(answer)
	}, clients)
	if err != nil {
		return requestStats{}, 0, err
	}
	defer stop()
	url := base + "/api/v1/units"
	cpu0 := selfCPU()
	st, err := loadRequests(ctx, requests, clients, func(ctx context.Context, i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != createAnswerBytes || resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("bench: bare POST: %d, %d bytes, %v", resp.StatusCode, n, err)
		}
		return nil
	})
	if err != nil {
		return st, 0, err
	}
	return st, (selfCPU() - cpu0) / float64(requests) * 1e6, nil
}
