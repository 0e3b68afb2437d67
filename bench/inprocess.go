package main

import (
	"encoding/json"
	"time"

	"github.com/helpdeskflow/helpdeskflow/commands"
)

// inProcessCosts are single-goroutine CPU costs of pieces of the create
// path, measured in this process on the same bodies, to weigh against the
// dev process's CPU per create.
type inProcessCosts struct {
	Iterations       int     `json:"iterations"`
	DecodeBodyUs     float64 `json:"decode_body_us"`
	SanitizeHTMLUs   float64 `json:"sanitize_html_us"`
	PlainTextUs      float64 `json:"plain_text_us"`
	MessageBodyBytes int     `json:"message_body_bytes_avg"`
}

func measureInProcess(bodies [][]byte) inProcessCosts {
	const n = 2000
	r := inProcessCosts{Iterations: n}
	msgs := make([]string, 0, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		var b createBody
		json.Unmarshal(bodies[i%len(bodies)], &b)
		msgs = append(msgs, b.Message.Body)
	}
	r.DecodeBodyUs = perOp(start, n)
	total := 0
	for _, m := range msgs {
		total += len(m)
	}
	r.MessageBodyBytes = total / n
	clean := make([]string, n)
	start = time.Now()
	for i, m := range msgs {
		clean[i] = commands.SanitizeHTML(m)
	}
	r.SanitizeHTMLUs = perOp(start, n)
	start = time.Now()
	for _, c := range clean {
		_ = commands.PlainText(c)
	}
	r.PlainTextUs = perOp(start, n)
	return r
}

func perOp(start time.Time, n int) float64 {
	return round3(float64(time.Since(start).Nanoseconds()) / float64(n) / 1000)
}
