package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// pgbenchScript is one INSERT per transaction, committed (autocommit), into
// a scratch table of the bench database; the payload is about the size of a
// ticket.created event.
const pgbenchScript = "INSERT INTO bench_scratch (payload) VALUES (repeat('x', 600));\n"

const scratchTable = `CREATE TABLE IF NOT EXISTS bench_scratch (
	id         bigserial PRIMARY KEY,
	payload    text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
)`

type pgbenchResult struct {
	Concurrency  int            `json:"concurrency"`
	Jobs         int            `json:"jobs"`
	Seconds      float64        `json:"seconds"`
	TPS          float64        `json:"tps"`
	Transactions int64          `json:"transactions"`
	Failed       int64          `json:"failed"`
	LatencyAvgMs float64        `json:"latency_avg_ms"`
	LatencyMs    latencySummary `json:"latency_ms"` // from pgbench's per-transaction log
	Command      string         `json:"command"`
	Error        string         `json:"error,omitempty"`
}

func pgbenchPath(configured string) (string, error) {
	if st, err := os.Stat(configured); err == nil && !st.IsDir() {
		return configured, nil
	}
	p, err := exec.LookPath("pgbench")
	if err != nil {
		return "", fmt.Errorf("pgbench not found at %s nor on PATH", configured)
	}
	return p, nil
}

var (
	tpsRE      = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
	latAvgRE   = regexp.MustCompile(`latency average = ([0-9.]+) ms`)
	processed  = regexp.MustCompile(`number of transactions actually processed: (\d+)`)
	failedRE   = regexp.MustCompile(`number of failed transactions: (\d+)`)
	durationRE = regexp.MustCompile(`duration: (\d+) s`)
)

// runPgbench runs pgbench with the one-INSERT script at concurrency c for d
// (whole seconds, at least 1) and parses its tps; latency percentiles come
// from its per-transaction log, written under dir.
func runPgbench(ctx context.Context, bin, dir string, db *pgDatabase, c int, d time.Duration) pgbenchResult {
	jobs := min(c, 2)
	secs := max(int(d.Round(time.Second)/time.Second), 1)
	script := filepath.Join(dir, "pgbench-insert.sql")
	logPrefix := filepath.Join(dir, fmt.Sprintf("pgbench_c%d", c))
	args := []string{"-n", "-f", script, "-c", strconv.Itoa(c), "-j", strconv.Itoa(jobs), "-T", strconv.Itoa(secs),
		"-l", "--log-prefix=" + logPrefix,
		"-h", db.host, "-p", strconv.Itoa(db.port), "-U", db.user, db.name}
	r := pgbenchResult{Concurrency: c, Jobs: jobs, Command: "pgbench " + strings.Join(args, " ")}
	if err := os.WriteFile(script, []byte(pgbenchScript), 0o644); err != nil {
		r.Error = err.Error()
		return r
	}
	cctx, cancel := context.WithTimeout(ctx, d+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PGAPPNAME=hdf-bench-pgbench", "PGCONNECT_TIMEOUT=10")
	if db.password != "" {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+db.password)
	}
	if db.sslmode != "" {
		cmd.Env = append(cmd.Env, "PGSSLMODE="+db.sslmode)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := out.String()
	if m := tpsRE.FindStringSubmatch(text); m != nil {
		r.TPS, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := latAvgRE.FindStringSubmatch(text); m != nil {
		r.LatencyAvgMs, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := processed.FindStringSubmatch(text); m != nil {
		r.Transactions, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := failedRE.FindStringSubmatch(text); m != nil {
		r.Failed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := durationRE.FindStringSubmatch(text); m != nil {
		r.Seconds, _ = strconv.ParseFloat(m[1], 64)
	}
	if err != nil || r.TPS == 0 {
		r.Error = fmt.Sprintf("pgbench: %v: %s", err, strings.TrimSpace(text))
	}
	r.LatencyMs = pgbenchLatencies(logPrefix)
	return r
}

// pgbenchLatencies reads pgbench's per-transaction logs (one file per
// thread: "client_id transaction_no time_us script_no epoch epoch_us").
func pgbenchLatencies(prefix string) latencySummary {
	files, _ := filepath.Glob(prefix + ".*")
	var lat []time.Duration
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() && len(lat) < 50_000_000 {
			fields := strings.Fields(sc.Text())
			if len(fields) < 3 {
				continue
			}
			us, err := strconv.ParseInt(fields[2], 10, 64)
			if err != nil {
				continue
			}
			lat = append(lat, time.Duration(us)*time.Microsecond)
		}
		fh.Close()
		os.Remove(f)
	}
	return summarize(lat)
}

// emptyServer is the other baseline: a net/http server in this process
// whose handler reads the body and answers 201 with nothing else, hit by the
// same load generator with the same bodies.
type emptyServer struct {
	srv *nethttp.Server
	url string
}

func startEmptyServer() (*emptyServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &nethttp.Server{
		Handler: nethttp.HandlerFunc(func(w nethttp.ResponseWriter, r *nethttp.Request) {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(nethttp.StatusCreated)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	go srv.Serve(l)
	return &emptyServer{srv: srv, url: "http://" + l.Addr().String() + "/v1/tickets"}, nil
}

func (s *emptyServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.srv.Shutdown(ctx)
}
