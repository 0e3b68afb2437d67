package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	nethttp "net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

func randomName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func splitHostPort(hostport string) (string, int, error) {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	return h, port, err
}

// moduleRoot is the directory of go.mod, where `go build ./cmd/helpdeskflow`
// runs.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the helpdeskflow module (go env GOMOD is empty)")
	}
	return filepath.Dir(gomod), nil
}

func buildBinary(ctx context.Context, root, bin string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/helpdeskflow")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/helpdeskflow: %w\n%s", err, stderr.String())
	}
	return nil
}

// pgDatabase is the benchmark's own database on the HDF_POSTGRES_URL server.
type pgDatabase struct {
	name     string
	url      string // the bench database
	adminURL string // the server's maintenance database
	host     string
	port     int
	user     string
	password string
	sslmode  string

	// On the bench database, through eventstore.Connect's pool (this package
	// may not import pgx itself: scripts/check-deps.sh).
	exec        func(ctx context.Context, sql string) error
	queryString func(ctx context.Context, sql string, args ...any) (string, error)
	queryRows   func(ctx context.Context, sql string, args ...any) ([][]any, error)
	closePool   func()
}

func createPostgresDatabase(ctx context.Context, serverURL, name string) (*pgDatabase, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, fmt.Errorf("HDF_POSTGRES_URL: %w", err)
	}
	admin := *u
	admin.Path = "/postgres"
	bench := *u
	bench.Path = "/" + name
	db := &pgDatabase{name: name, url: bench.String(), adminURL: admin.String(), host: u.Hostname(),
		user: u.User.Username(), sslmode: u.Query().Get("sslmode")}
	db.password, _ = u.User.Password()
	db.port = 5432
	if p := u.Port(); p != "" {
		if db.port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("HDF_POSTGRES_URL port: %w", err)
		}
	}

	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	pool, err := pg.Connect(cctx, db.adminURL, 1)
	if err != nil {
		return nil, fmt.Errorf("connect to the Postgres server (is it running? bash scripts/services.sh status test): %w", err)
	}
	defer pool.Close()
	if _, err := pool.Pool().Exec(cctx, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("create database %s: %w", name, err)
	}
	benchPool, err := pg.Connect(cctx, db.url, 4)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("connect to %s: %w", name, err), db.drop())
	}
	db.exec = func(ctx context.Context, sql string) error {
		_, err := benchPool.Pool().Exec(ctx, sql)
		return err
	}
	db.queryString = func(ctx context.Context, sql string, args ...any) (string, error) {
		var v string
		err := benchPool.Pool().QueryRow(ctx, sql, args...).Scan(&v)
		return v, err
	}
	db.queryRows = func(ctx context.Context, sql string, args ...any) ([][]any, error) {
		rows, err := benchPool.Pool().Query(ctx, sql, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out [][]any
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, rows.Err()
	}
	db.closePool = benchPool.Close
	return db, nil
}

func (db *pgDatabase) close() {
	if db.closePool != nil {
		db.closePool()
		db.closePool = nil
	}
}

// drop removes the database, disconnecting whoever is still on it.
func (db *pgDatabase) drop() error {
	db.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pg.Connect(ctx, db.adminURL, 1)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", db.name, err)
	}
	defer pool.Close()
	if _, err := pool.Pool().Exec(ctx, "DROP DATABASE IF EXISTS "+db.name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", db.name, err)
	}
	logf("dropped Postgres database %s", db.name)
	return nil
}

// describe returns the server settings that decide what a commit costs.
func (db *pgDatabase) describe(ctx context.Context) map[string]string {
	out := map[string]string{}
	for _, name := range []string{"server_version", "fsync", "synchronous_commit", "full_page_writes", "wal_level",
		"shared_buffers", "max_connections", "commit_delay"} {
		if v, err := db.queryString(ctx, "SELECT current_setting($1)", name); err == nil {
			out[name] = v
		}
	}
	return out
}

// clickHouseOptions reads HDF_CLICKHOUSE_ADDR as the projections package
// does: host:port (user default, no password) or a native-protocol DSN.
func clickHouseOptions(addr string) (*clickhouse.Options, error) {
	opts := &clickhouse.Options{Addr: []string{addr}}
	if strings.Contains(addr, "://") {
		var err error
		if opts, err = clickhouse.ParseDSN(addr); err != nil {
			return nil, fmt.Errorf("HDF_CLICKHOUSE_ADDR: %w", err)
		}
	}
	opts.Auth.Database = "default"
	opts.DialTimeout = 5 * time.Second
	opts.MaxOpenConns = 4
	return opts, nil
}

func openClickHouse(ctx context.Context, opts *clickhouse.Options) (driver.Conn, error) {
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open ClickHouse: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("reach ClickHouse at %v: %w", opts.Addr, err)
	}
	return conn, nil
}

func dropClickHouseDatabase(opts *clickhouse.Options, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := openClickHouse(ctx, opts)
	if err != nil {
		return fmt.Errorf("drop ClickHouse database %s: %w", name, err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
		return fmt.Errorf("drop ClickHouse database %s: %w", name, err)
	}
	logf("dropped ClickHouse database %s", name)
	return nil
}

func clickHouseVersion(ctx context.Context, ch driver.Conn) string {
	var v string
	if err := ch.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return "unknown: " + err.Error()
	}
	return v
}

type devConfig struct {
	bin, dir, dataDir            string
	postgresURL                  string
	clickHouseAddr, clickHouseDB string
	stderrPath                   string
}

// devProcess is `helpdeskflow dev` running as a child process.
type devProcess struct {
	cmd      *exec.Cmd
	pid      int
	url, key string
	stderr   *os.File

	done     chan struct{} // closed when the process has exited
	waitErr  error
	mu       sync.Mutex
	stopped  bool
	shutdown shutdownResult
}

type shutdownResult struct {
	Signal          string  `json:"signal"`
	ExitCode        int     `json:"exit_code"`
	Seconds         float64 `json:"seconds"`
	WithinTimeout   bool    `json:"within_timeout"`
	Clean           bool    `json:"clean"`
	StderrTail      string  `json:"stderr_tail,omitempty"`
	TimeoutSeconds  float64 `json:"timeout_seconds"`
	KilledAfterwait bool    `json:"killed_after_timeout,omitempty"`
}

var (
	runningRE = regexp.MustCompile(`HelpDeskFlow is running at (http://\S+)`)
	keyRE     = regexp.MustCompile(`^\s+(hdf_\w+)\s*$`)
)

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startDev(ctx context.Context, c devConfig) (*devProcess, error) {
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("find a free port: %w", err)
	}
	stderr, err := os.Create(c.stderrPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.bin, "dev")
	cmd.Dir = c.dir
	// The dev process gets only the benchmark's own HDF_* settings, except
	// HDF_DEBUG_ADDR, so that it can be profiled under load:
	//	HDF_DEBUG_ADDR=127.0.0.1:6060 make bench
	//	go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HDF_") || strings.HasPrefix(kv, "HDF_DEBUG_ADDR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env,
		"HDF_POSTGRES_URL="+c.postgresURL,
		"HDF_CLICKHOUSE_ADDR="+c.clickHouseAddr,
		"HDF_CLICKHOUSE_DATABASE="+c.clickHouseDB,
		fmt.Sprintf("HDF_HTTP_ADDR=127.0.0.1:%d", port),
		"HDF_DATA_DIR="+c.dataDir,
		"HDF_LOG_LEVEL=warn",
	)
	cmd.Stderr = stderr
	// Its own process group, so a Ctrl-C on the benchmark does not reach it
	// before the benchmark has stopped it in order; and SIGTERM if the
	// benchmark dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		stderr.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		stderr.Close()
		return nil, fmt.Errorf("start %s dev: %w", c.bin, err)
	}
	d := &devProcess{cmd: cmd, pid: cmd.Process.Pid, stderr: stderr, done: make(chan struct{})}

	// The reader parses the URL and key, then keeps draining stdout until
	// the process closes it; only then may Wait run.
	found := make(chan struct{})
	stdoutDone := make(chan struct{})
	go func() {
		defer close(stdoutDone)
		sc := bufio.NewScanner(stdout)
		var u, k string
		signalled := false
		for sc.Scan() {
			if signalled {
				continue
			}
			if m := runningRE.FindStringSubmatch(sc.Text()); m != nil {
				u = m[1]
			}
			if m := keyRE.FindStringSubmatch(sc.Text()); m != nil {
				k = m[1]
			}
			if u != "" && k != "" {
				d.url, d.key = u, k
				close(found)
				signalled = true
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		<-stdoutDone
		d.waitErr = cmd.Wait()
		close(d.done)
	}()

	fail := func(err error) (*devProcess, error) {
		return nil, errors.Join(err, d.stop(30*time.Second))
	}
	timeout := time.NewTimer(90 * time.Second)
	defer timeout.Stop()
	select {
	case <-found:
	case <-d.done:
		return fail(fmt.Errorf("dev exited before printing its URL and key (%v); see %s:\n%s", d.waitErr, c.stderrPath, tail(c.stderrPath, 2000)))
	case <-timeout.C:
		return fail(fmt.Errorf("dev did not print its URL and key within 90 s; see %s", c.stderrPath))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	u, err := url.Parse(d.url)
	if err != nil || u.Hostname() != "127.0.0.1" {
		return fail(fmt.Errorf("dev printed URL %q, want http://127.0.0.1:…", d.url))
	}
	if err := d.waitReady(ctx, 60*time.Second); err != nil {
		return fail(err)
	}
	return d, nil
}

// waitReady polls /readyz until it answers 200.
func (d *devProcess) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last string
	for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
		req, _ := nethttp.NewRequestWithContext(ctx, "GET", d.url+"/readyz", nil)
		resp, err := nethttp.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			last = fmt.Sprintf("status %d: %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.done:
			return fmt.Errorf("dev exited while waiting for /readyz: %v", d.waitErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("dev not ready within %s: %s", limit, last)
}

func (d *devProcess) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to timeout for the process to exit; after
// that it kills the process group. It returns an error unless the process
// exited by itself with status 0 within the timeout.
func (d *devProcess) stop(timeout time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return nil
	}
	d.stopped = true
	defer d.stderr.Close()
	r := shutdownResult{Signal: "SIGTERM", TimeoutSeconds: timeout.Seconds(), ExitCode: -1}
	start := time.Now()
	if !d.exited() {
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			logf("SIGTERM to dev: %v", err)
		}
	}
	select {
	case <-d.done:
		r.WithinTimeout = true
	case <-time.After(timeout):
		r.KilledAfterwait = true
		syscall.Kill(-d.pid, syscall.SIGKILL)
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
		}
	}
	r.Seconds = time.Since(start).Seconds()
	if d.cmd.ProcessState != nil {
		r.ExitCode = d.cmd.ProcessState.ExitCode()
	}
	r.Clean = r.WithinTimeout && r.ExitCode == 0
	if !r.Clean {
		r.StderrTail = tail(d.stderr.Name(), 2000)
	}
	d.shutdown = r
	logf("dev exited with status %d after %.2f s", r.ExitCode, r.Seconds)
	if !r.Clean {
		return fmt.Errorf("dev did not exit cleanly after SIGTERM: exit code %d, within %s: %v (wait: %v)\n%s",
			r.ExitCode, timeout, r.WithinTimeout, d.waitErr, r.StderrTail)
	}
	return nil
}

// tail is the last n bytes of the file at path.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-n, 0)
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	return string(b)
}

// sourceTreeHash identifies the code that was measured (the repository has
// no commits to name): SHA-256 over the paths and contents of go.mod, go.sum
// and every .go and .sql file outside bench/ and .local/.
func sourceTreeHash(root string) string {
	h := sha256.New()
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == "bench" || rel == ".local" || rel == ".git" || rel == "bench-results" {
				return filepath.SkipDir
			}
			return nil
		}
		if !(strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, ".sql") || rel == "go.mod" || rel == "go.sum") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}
