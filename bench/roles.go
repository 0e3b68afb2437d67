package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
)

// The production shape: the Kafka broker and each role of `helpdeskflow
// serve` as an OS process of its own, as a deployment runs them, on
// databases of their own. The capacity phase measures what each process
// costs per create, per read and per delivery.

// shapeRoles are the processes of the production shape besides the broker,
// in start order (consumers before the API, so that nothing waits for
// them).
var shapeRoles = []string{"relay", "projector", "dispatcher", "api"}

// shape is the production shape running: the broker, then the roles.
type shape struct {
	broker *devProcess
	roles  map[string]*devProcess // by role
	apiURL string
}

// spawn starts bin with args as a child process in dir, with env, its
// stderr to stderrPath, in its own process group (so a Ctrl-C on the
// benchmark does not reach it before the benchmark has stopped it in
// order), with SIGTERM if the benchmark dies without cleaning up. name is
// how logs and errors call it. With readStdout, that reads the process's
// stdout (and the rest is drained until the process closes it, before Wait
// runs); without, stdout goes to stderrPath too.
func spawn(name, bin, dir string, args, env []string, stderrPath string, readStdout func(*devProcess, io.Reader)) (*devProcess, error) {
	stderr, err := os.Create(stderrPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env, cmd.Stderr = dir, env, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	var stdout io.Reader
	if readStdout == nil {
		cmd.Stdout = stderr
	} else if stdout, err = cmd.StdoutPipe(); err != nil {
		stderr.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		stderr.Close()
		return nil, fmt.Errorf("start %s %s: %w", bin, name, err)
	}
	d := &devProcess{name: name, cmd: cmd, pid: cmd.Process.Pid, stderr: stderr, done: make(chan struct{})}
	go func() {
		if readStdout != nil {
			readStdout(d, stdout)
			io.Copy(io.Discard, stdout)
		}
		d.waitErr = cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

// startShape starts the broker and the roles on the Postgres database at
// postgresURL and the ClickHouse database chDB (migrated and with a
// workspace already: `helpdeskflow migrate` ran), each writing its log to
// dir/<name>.log, and waits until every role answers its health check.
// On an error it stops what it had started.
func startShape(ctx context.Context, c devConfig, dir, postgresURL, chDB string) (_ *shape, err error) {
	s := &shape{roles: map[string]*devProcess{}}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	brokerPort, err := freePort()
	if err != nil {
		return nil, err
	}
	brokerAddr := fmt.Sprintf("127.0.0.1:%d", brokerPort)
	if s.broker, err = spawn("broker", c.bin, c.dir,
		[]string{"broker", "--data-dir", filepath.Join(dir, "broker"), "--kafka-port", fmt.Sprint(brokerPort)},
		childEnv(false, "HDF_LOG_LEVEL=warn"), filepath.Join(dir, "broker.log"), nil); err != nil {
		return nil, err
	}
	if err := waitListening(ctx, s.broker, brokerAddr, 30*time.Second); err != nil {
		return nil, err
	}
	spec, err := secretbox.NewKey("shape1")
	if err != nil {
		return nil, err
	}
	for _, role := range shapeRoles {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		p, err := spawn(role, c.bin, c.dir, []string{"serve"}, childEnv(true,
			"HDF_ROLES="+role,
			"HDF_POSTGRES_URL="+postgresURL,
			"HDF_CLICKHOUSE_ADDR="+c.clickHouseAddr,
			"HDF_CLICKHOUSE_DATABASE="+chDB,
			"HDF_KAFKA_BROKERS="+brokerAddr,
			"HDF_SECRET_KEYS="+spec,
			"HDF_OUTBOUND_ALLOW_LOOPBACK=true",
			fmt.Sprintf("HDF_HTTP_ADDR=127.0.0.1:%d", port),
			"HDF_LOG_LEVEL=warn",
		), filepath.Join(dir, role+".log"), nil)
		if err != nil {
			return nil, err
		}
		s.roles[role] = p
		p.url, p.readyPath = url, "/healthz"
		if role == "api" {
			p.readyPath, s.apiURL = "/readyz", url
		}
		if err := p.waitReady(ctx, 60*time.Second); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// waitListening waits until addr accepts TCP connections, p exits or limit
// passes.
func waitListening(ctx context.Context, p *devProcess, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not listen on %s after %s: %v\n%s", p.name, addr, limit, err, tail(p.stderr.Name(), 2000))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return fmt.Errorf("%s exited before listening on %s (%v):\n%s", p.name, addr, p.waitErr, tail(p.stderr.Name(), 2000))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// pids is every process of the shape by name: the roles and "broker".
func (s *shape) pids() map[string]int {
	m := map[string]int{}
	for name, p := range s.roles {
		m[name] = p.pid
	}
	if s.broker != nil {
		m["broker"] = s.broker.pid
	}
	return m
}

// stop stops the roles (API first), then the broker, each with SIGTERM,
// and returns what failed to stop cleanly.
func (s *shape) stop() error {
	var failed []string
	for i := len(shapeRoles) - 1; i >= 0; i-- {
		if p := s.roles[shapeRoles[i]]; p != nil {
			if err := p.stop(30 * time.Second); err != nil {
				failed = append(failed, err.Error())
			}
		}
	}
	if s.broker != nil {
		if err := s.broker.stop(30 * time.Second); err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return nil
}
