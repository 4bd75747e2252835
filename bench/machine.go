package bench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// Machine describes where the figures were taken.
type Machine struct {
	CPU        string
	Cores      int
	MemoryGiB  float64
	Kernel     string
	GoVersion  string
	Filesystem string // of the benchmark directory: type and device
	Load       string // /proc/loadavg when the run started
}

func (m Machine) String() string {
	return fmt.Sprintf("%s, %d cores, %.0f GiB RAM, Linux %s, %s, data on %s, load at start %s",
		m.CPU, m.Cores, m.MemoryGiB, m.Kernel, m.GoVersion, m.Filesystem, m.Load)
}

// describeMachine reads /proc for the machine that dir lives on.
func describeMachine(dir string) Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), CPU: "unknown CPU"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) >= 2 && fields[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(fields[1], 64)
				m.MemoryGiB = kb / (1 << 20)
				break
			}
		}
		f.Close()
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		var b strings.Builder
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b.WriteByte(byte(c))
		}
		m.Kernel = b.String()
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			m.Load = strings.Join(f[:3], " ")
		}
	}
	m.Filesystem = filesystemOf(dir)
	return m
}

// filesystemOf returns the type and device of the mount that holds dir.
func filesystemOf(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "unknown filesystem"
	}
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return "unknown filesystem"
	}
	defer f.Close()
	best, out := -1, "unknown filesystem"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		mp := fields[1]
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > best {
			best, out = len(mp), fields[2]+" ("+fields[0]+")"
		}
	}
	return out
}
