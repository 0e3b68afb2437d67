package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	nethttp "net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// devConfig is how an environment runs helpdeskflow's commands.
type devConfig struct {
	bin            string // the helpdeskflow binary
	dir            string // where dev runs: the module root
	tmp            string // the run's temp dir: dev keeps its data in tmp/data; one-off commands run here
	clickHouseAddr string // HDF_CLICKHOUSE_ADDR
	stderrPath     string // where dev's stderr goes
}

// devProcess is a helpdeskflow command running as a child process:
// `helpdeskflow dev`, or a process of the production shape (spawn).
type devProcess struct {
	name      string // "dev", or the role
	cmd       *exec.Cmd
	pid       int
	url, key  string
	readyPath string // what waitReady polls; "" is /readyz
	stderr    *os.File

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

// startDev starts `helpdeskflow dev` on the Postgres database at
// postgresURL and the ClickHouse database clickHouseDB, and waits until it
// has printed its URL and demo key and answers /readyz.
func startDev(ctx context.Context, c devConfig, postgresURL, clickHouseDB string) (*devProcess, error) {
	dataDir := filepath.Join(c.tmp, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("find a free port: %w", err)
	}
	// The dev process gets only the benchmark's own HDF_* settings, except
	// HDF_GROUP_COMMITTERS and HDF_READ_CACHE_MB (to compare settings;
	// GOGC and GOMEMLIMIT pass too) and HDF_DEBUG_ADDR, so that it can be profiled
	// under load:
	//	HDF_DEBUG_ADDR=127.0.0.1:6060 make bench
	//	go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10
	env := childEnv(true,
		"HDF_POSTGRES_URL="+postgresURL,
		"HDF_CLICKHOUSE_ADDR="+c.clickHouseAddr,
		"HDF_CLICKHOUSE_DATABASE="+clickHouseDB,
		fmt.Sprintf("HDF_HTTP_ADDR=127.0.0.1:%d", port),
		"HDF_DATA_DIR="+dataDir,
		"HDF_LOG_LEVEL=warn",
	)
	// The reader parses the URL and key; spawn drains the rest of stdout.
	found := make(chan struct{})
	d, err := spawn("dev", c.bin, c.dir, []string{"dev"}, env, c.stderrPath, func(d *devProcess, stdout io.Reader) {
		sc := bufio.NewScanner(stdout)
		var u, k string
		for sc.Scan() {
			if m := runningRE.FindStringSubmatch(sc.Text()); m != nil {
				u = m[1]
			}
			if m := keyRE.FindStringSubmatch(sc.Text()); m != nil {
				k = m[1]
			}
			if u != "" && k != "" {
				d.url, d.key = u, k
				close(found)
				return
			}
		}
	})
	if err != nil {
		return nil, err
	}

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

// childEnv is the environment of a helpdeskflow child process: this
// process's without its HDF_* settings (but HDF_DEBUG_ADDR,
// HDF_GROUP_COMMITTERS and HDF_READ_CACHE_MB with debug),
// then settings.
func childEnv(debug bool, settings ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HDF_") || debug && (strings.HasPrefix(kv, "HDF_DEBUG_ADDR=") || strings.HasPrefix(kv, "HDF_GROUP_COMMITTERS=") ||
			strings.HasPrefix(kv, "HDF_READ_CACHE_MB=")) {
			env = append(env, kv)
		}
	}
	return append(env, settings...)
}

// waitReady polls readyPath (/readyz unless set) until it answers 200.
func (d *devProcess) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last string
	for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
		path := d.readyPath
		if path == "" {
			path = "/readyz"
		}
		req, _ := nethttp.NewRequestWithContext(ctx, "GET", d.url+path, nil)
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
			return fmt.Errorf("%s exited while waiting to be ready: %v\n%s", d.name, d.waitErr, tail(d.stderr.Name(), 2000))
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready within %s: %s", d.name, limit, last)
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
			logf("SIGTERM to %s: %v", d.name, err)
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
	logf("%s exited with status %d after %.2f s", d.name, r.ExitCode, r.Seconds)
	if !r.Clean {
		return fmt.Errorf("%s did not exit cleanly after SIGTERM: exit code %d, within %s: %v (wait: %v)\n%s",
			d.name, r.ExitCode, timeout, r.WithinTimeout, d.waitErr, r.StderrTail)
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
