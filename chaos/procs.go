package chaos

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// proc is one OS process of the system under test (a role or the broker),
// restarted when it exits by itself, as a process supervisor would.
type proc struct {
	name   string
	bin    string
	args   []string
	env    []string
	addr   string // 127.0.0.1:port it answers on when up (health: GET /healthz, or TCP for the broker)
	health string // "" for a TCP check
	log    io.Writer
	logf   func(format string, args ...any)

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	stopping bool // killed or stopped on purpose: no restart
	selfExit int  // exits nobody asked for
	closed   bool
}

// start starts the process (it does not wait until it is up).
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("%s: closed", p.name)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = p.log, p.log
	// Its own process group, so a kill reaches only it and an interrupt of
	// the harness does not reach it before the harness stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.stopping = cmd, exited, false
	go func() {
		err := cmd.Wait()
		close(exited)
		p.mu.Lock()
		restart := !p.stopping && !p.closed && p.cmd == cmd
		if restart {
			p.selfExit++
		}
		p.mu.Unlock()
		if restart {
			p.logf("%s exited by itself (%v); restarting it", p.name, err)
			time.Sleep(500 * time.Millisecond)
			if err := p.start(); err != nil {
				p.logf("restart %s: %v", p.name, err)
			}
		}
	}()
	return nil
}

// waitUp waits until the process answers (GET health with a 2xx, or a TCP
// connection) or timeout passes.
func (p *proc) waitUp(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		if p.health == "" {
			if c, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
				c.Close()
				return nil
			}
		} else if req, err := http.NewRequestWithContext(ctx, "GET", "http://"+p.addr+p.health, nil); err == nil {
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
				if resp.StatusCode < 300 {
					return nil
				}
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s did not come up on %s within %s", p.name, p.addr, timeout)
		}
		sleep(ctx, 20*time.Millisecond)
	}
}

// signal sends sig to the process and waits until it exited (after grace,
// SIGKILL).
func (p *proc) signal(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.stopping = true
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig) //nolint:errcheck // it may have exited already
	select {
	case <-exited:
	case <-time.After(grace):
		cmd.Process.Kill() //nolint:errcheck // it may have exited already
		<-exited
	}
}

// kill9 kills the process with SIGKILL and waits until it is gone.
func (p *proc) kill9() { p.signal(syscall.SIGKILL, time.Minute) }

// stop stops the process with SIGTERM (SIGKILL after 30 s).
func (p *proc) stop() { p.signal(syscall.SIGTERM, 30*time.Second) }

// close stops the process for good.
func (p *proc) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.stop()
}

func (p *proc) selfExits() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.selfExit
}

// withoutHDF is environ without any HDF_ variable, so nothing of the
// caller's configuration reaches the processes.
func withoutHDF(environ []string) []string {
	var out []string
	for _, kv := range environ {
		if len(kv) >= 4 && kv[:4] == "HDF_" {
			continue
		}
		out = append(out, kv)
	}
	return out
}
