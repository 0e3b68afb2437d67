package chaos

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"
)

// receiver is the webhook endpoint: it answers 500 to failRate of the
// requests, hangs (past the sender's 3 s timeout) on hangRate, and
// otherwise answers 204 and counts the event as received.
type receiver struct {
	failRate, hangRate float64
	hang               time.Duration

	mu       sync.Mutex
	received map[string]int // event id → 2xx answers
	requests int
	failed   int
	hung     int
	server   *http.Server
}

// listen starts the receiver on addr (127.0.0.1:port).
func (r *receiver) listen(addr string) error {
	r.received = map[string]int{}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	r.server = &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go r.server.Serve(ln) //nolint:errcheck // ends with close
	return nil
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	io.Copy(io.Discard, req.Body) //nolint:errcheck // the body is not checked
	id := req.Header.Get("X-HDF-Event-Id")
	x := rand.Float64()
	r.mu.Lock()
	r.requests++
	switch {
	case x < r.hangRate:
		r.hung++
	case x < r.hangRate+r.failRate:
		r.failed++
	}
	r.mu.Unlock()
	switch {
	case x < r.hangRate:
		t := time.NewTimer(r.hang)
		defer t.Stop()
		select {
		case <-req.Context().Done():
		case <-t.C:
		}
		w.WriteHeader(http.StatusGatewayTimeout)
	case x < r.hangRate+r.failRate:
		w.WriteHeader(http.StatusInternalServerError)
	default:
		r.mu.Lock()
		r.received[id]++
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}
}

// snapshot returns the received events and the request counts.
func (r *receiver) snapshot() (received map[string]int, requests, failed, hung int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	received = make(map[string]int, len(r.received))
	for k, v := range r.received {
		received[k] = v
	}
	return received, r.requests, r.failed, r.hung
}

func (r *receiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r.server.Shutdown(ctx) //nolint:errcheck // best effort
	r.server.Close()       //nolint:errcheck // hung requests
}
