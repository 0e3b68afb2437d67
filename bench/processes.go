package main

import (
	"context"
	"fmt"
	"math"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const clockTicks = 100 // USER_HZ; 100 on every Linux this runs on

// procStat is the CPU ticks of one process: its own and its reaped children's.
type procStat struct {
	comm       string
	ppid       int
	self, kids uint64
}

func readProcStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 15 {
		return procStat{}, false
	}
	n := func(k int) uint64 { v, _ := strconv.ParseUint(f[k], 10, 64); return v }
	ppid, _ := strconv.Atoi(f[1])
	comm := ""
	if j := strings.IndexByte(s, '('); j >= 0 && j < i {
		comm = s[j+1 : i]
	}
	return procStat{comm: comm, ppid: ppid, self: n(11) + n(12), kids: n(13) + n(14)}, true
}

// procWatch knows the processes whose CPU the benchmark splits: the dev
// process, the Postgres and ClickHouse servers (found by the port they
// listen on, with their child processes), and this process.
type procWatch struct {
	devPid, pgPid, chPid, self int
}

func newProcWatch(devPid, pgPort int, chAddr string) *procWatch {
	w := &procWatch{devPid: devPid, self: os.Getpid()}
	listeners := listeningPids()
	w.pgPid = listeners[pgPort]
	if _, port, err := splitHostPort(chAddr); err == nil {
		w.chPid = listeners[port]
	}
	return w
}

type cpuSnap struct {
	at                         time.Time
	dev, pg, ch, self, selfKid uint64
	busy, total                uint64
	others                     map[int]procStat // every other process, for naming who else used the CPU
}

func (w *procWatch) snap() cpuSnap {
	s := cpuSnap{at: time.Now()}
	if st, ok := readProcStat(w.devPid); ok {
		s.dev = st.self
	}
	if st, ok := readProcStat(w.self); ok {
		s.self, s.selfKid = st.self, st.kids
	}
	// Server groups: the root's own and reaped children's ticks, plus the
	// live children (Postgres backends).
	groups := map[int]*uint64{}
	if w.pgPid > 0 {
		groups[w.pgPid] = &s.pg
	}
	if w.chPid > 0 {
		groups[w.chPid] = &s.ch
	}
	for root, dst := range groups {
		if st, ok := readProcStat(root); ok {
			*dst += st.self + st.kids
		}
	}
	s.others = map[int]procStat{}
	pids, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range pids {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil || pid == w.devPid || pid == w.self || pid == w.pgPid || pid == w.chPid {
			continue
		}
		st, ok := readProcStat(pid)
		if !ok {
			continue
		}
		if dst, ok := groups[st.ppid]; ok {
			*dst += st.self
		} else if st.ppid != w.self {
			s.others[pid] = st
		}
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for i := 1; i < len(f) && i <= 8; i++ { // user nice system idle iowait irq softirq steal
			v, _ := strconv.ParseUint(f[i], 10, 64)
			s.total += v
			if i != 4 && i != 5 {
				s.busy += v
			}
		}
	}
	return s
}

// cpuSplit is where the CPU went during a phase, in percent of one core
// (so 2 fully used cores are 200), and the machine's busy share.
type cpuSplit struct {
	Cores            int     `json:"cores"`
	DevPct           float64 `json:"dev_process_pct"`
	PostgresPct      float64 `json:"postgres_pct"`
	ClickHousePct    float64 `json:"clickhouse_pct"`
	LoadGenPct       float64 `json:"bench_process_pct"`
	BenchChildrenPct float64 `json:"bench_children_pct"`
	OtherPct         float64 `json:"other_processes_pct"`
	KernelThreadsPct float64 `json:"kernel_threads_pct"`
	UnattributedPct  float64 `json:"unattributed_pct"` // interrupts, processes that came and went
	MachineBusyPct   float64 `json:"machine_busy_pct"`
	// OtherTop names the other processes that used the most CPU (by
	// command name, % of one core): other people's work on a shared machine
	// makes a phase's figures unreliable.
	OtherTop []string `json:"other_top,omitempty"`
}

func split(a, b cpuSnap, cores int) cpuSplit {
	secs := b.at.Sub(a.at).Seconds()
	if secs <= 0 {
		return cpuSplit{}
	}
	pct := func(d uint64) float64 { return math.Round(float64(d)/clockTicks/secs*1000) / 10 }
	s := cpuSplit{Cores: cores, DevPct: pct(b.dev - a.dev), PostgresPct: pct(b.pg - a.pg), ClickHousePct: pct(b.ch - a.ch),
		LoadGenPct: pct(b.self - a.self), BenchChildrenPct: pct(b.selfKid - a.selfKid)}
	if b.total > a.total {
		s.MachineBusyPct = math.Round(float64(b.busy-a.busy)/float64(b.total-a.total)*1000) / 10
	}
	byComm := map[string]uint64{}
	var other, kernel uint64
	for pid, st := range b.others {
		before := a.others[pid] // zero for a process that started during the phase
		if before.comm != st.comm {
			before = procStat{}
		}
		if st.self <= before.self {
			continue
		}
		d := st.self - before.self
		if st.ppid == 2 { // kernel threads: mostly work our own load causes (network, memory)
			kernel += d
			continue
		}
		other += d
		byComm[st.comm] += d
	}
	s.OtherPct, s.KernelThreadsPct = pct(other), pct(kernel)
	attributed := s.DevPct + s.PostgresPct + s.ClickHousePct + s.LoadGenPct + s.BenchChildrenPct + s.OtherPct + s.KernelThreadsPct
	s.UnattributedPct = math.Max(math.Round((pct(b.busy-a.busy)-attributed)*10)/10, 0)
	type kv struct {
		comm  string
		ticks uint64
	}
	var top []kv
	for c, t := range byComm {
		top = append(top, kv{c, t})
	}
	sort.Slice(top, func(i, j int) bool { return top[i].ticks > top[j].ticks })
	for _, e := range top[:min(len(top), 5)] {
		if p := pct(e.ticks); p >= 1 {
			s.OtherTop = append(s.OtherTop, fmt.Sprintf("%s %.0f%%", e.comm, p))
		}
	}
	return s
}

// disturbed says whether processes outside the benchmark took enough CPU
// during a phase to make its figures unreliable.
func (s cpuSplit) disturbed() bool { return s.OtherPct >= 20 }

// listeningPids maps TCP ports in LISTEN state to the process owning the
// socket.
func listeningPids() map[int]int {
	inodePort := map[string]int{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" {
				continue
			}
			_, portHex, ok := strings.Cut(fs[1], ":")
			if !ok {
				continue
			}
			port, err := strconv.ParseInt(portHex, 16, 32)
			if err != nil {
				continue
			}
			inodePort["socket:["+fs[9]+"]"] = int(port)
		}
	}
	out := map[int]int{}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		link, err := os.Readlink(fd)
		if err != nil {
			continue
		}
		if port, ok := inodePort[link]; ok {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			if cur, seen := out[port]; !seen || pid < cur {
				out[port] = pid
			}
		}
	}
	return out
}

// memory reads VmRSS and VmHWM (kB) of pid.
func memory(pid int) (rss, hwm uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseUint(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm
}

// monitor samples, while a phase runs, the dev process's RSS (every 250 ms)
// and the lag gauges of its /metrics (every second).
type monitor struct {
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	maxRSS uint64
	srv    serverStats
	errs   string
}

func startMonitor(ctx context.Context, client *nethttp.Client, metricsURL string, pid int) *monitor {
	m := &monitor{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 4*3600; i++ {
			rss, _ := memory(pid)
			m.mu.Lock()
			m.maxRSS = max(m.maxRSS, rss)
			m.mu.Unlock()
			if i%4 == 0 {
				if snap, err := scrape(ctx, client, metricsURL); err == nil {
					m.mu.Lock()
					m.srv.MaxRelayLagEvents = math.Max(m.srv.MaxRelayLagEvents, snap.sum("helpdeskflow_relay_lag_events", nil))
					m.srv.MaxRelayLagSeconds = math.Max(m.srv.MaxRelayLagSeconds, snap.sum("helpdeskflow_relay_lag_seconds", nil))
					m.srv.MaxProjectorLag = math.Max(m.srv.MaxProjectorLag, snap.sum("helpdeskflow_projector_consumer_lag", nil))
					m.srv.MaxDispatchLag = math.Max(m.srv.MaxDispatchLag, snap.sum("helpdeskflow_dispatch_consumer_lag", nil))
					m.srv.MaxOldestTxAgeSecond = math.Max(m.srv.MaxOldestTxAgeSecond, snap.sum("helpdeskflow_oldest_transaction_age_seconds", nil))
					m.srv.MaxGoroutines = math.Max(m.srv.MaxGoroutines, snap.sum("go_goroutines", nil))
					m.mu.Unlock()
				} else {
					m.mu.Lock()
					m.errs = err.Error()
					m.mu.Unlock()
				}
			}
			select {
			case <-m.stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

// finish stops the sampling and returns the peak RSS (kB) and the gauges'
// maxima.
func (m *monitor) finish() (uint64, serverStats, string) {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.maxRSS, m.srv, m.errs
}

// topSnapshot is the second frame of `top -b -n 2 -d 1` (the first frame's
// percentages are averages since each process started), its first lines.
func topSnapshot(ctx context.Context) []string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "top", "-b", "-n", "2", "-d", "1", "-w", "160").Output()
	if err != nil {
		return []string{"top: " + err.Error()}
	}
	frames := strings.Split(string(out), "\ntop - ")
	frame := frames[len(frames)-1]
	if len(frames) > 1 {
		frame = "top - " + frame
	}
	lines := strings.Split(frame, "\n")
	var keep []string
	for _, l := range lines[:min(len(lines), 22)] {
		keep = append(keep, strings.TrimRight(l, " "))
	}
	return keep
}
