package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/gmail/gmailtest"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth/oauthtest"
)

// The mail phase: messages imported per second from a Gmail mailbox of
// -mail-messages messages through the whole import pipeline (a
// mailsync.Worker's first sync of a fresh connection: list the window,
// fetch each message raw over the Gmail API, mail.Parse, convert,
// tickets.Service.ImportMail), against the same messages made by
// tickets.Service.CreateTicket and AddMessage directly, with no mail on
// the path, in the same run. There is no target: the ratio says what the
// mail path costs on top of the commands.
//
// Like the webhooks phase it runs in the bench process on a Postgres
// database of its own: the dev process runs a mail sync of its own on the
// bench database. The Gmail API is gmailtest's fake and the OAuth provider
// oauthtest's, both httptest servers in this process on 127.0.0.1.
const (
	mailPoolConns       = 32 // serve's default HDF_POSTGRES_MAX_CONNS
	mailSeed            = 2026
	mailMailbox         = "support@helpdesk-bench.example"
	mailSpan            = 23 * time.Hour // the messages arrived over the last day, oldest first
	mailPageSize        = 500            // what the sync asks for when it lists
	mailStatsSettle     = 300 * time.Millisecond
	mailMinMessages     = 100
	mailMaxMessages     = 100_000
	mailDefaultMessages = 10_000
)

// mailOrder is the order of the rounds: true is the pipeline. ABBA, so
// that a drift over the phase (tables growing) weighs on both sides alike.
var mailOrder = []bool{false, true, true, false}

// mailEnv is what the rounds share: the phase's environment (its
// database, keyring and logger), the fakes, the mailbox.
type mailEnv struct {
	*phaseEnv
	oauth  *oauthtest.Server
	gmail  *gmailtest.Server
	corpus *mailCorpus
	md     helpdeskflow.Metadata
	token  string // an access token of the last pipeline round's connection, for the fetch+parse measurement
}

// runMail is the mail phase.
func (b *bench) runMail(ctx context.Context) (err error) {
	n := b.o.mailMessages
	m := &mailResult{Messages: n, RoundOrder: mailRoundOrder(mailOrder), PoolConns: mailPoolConns}
	b.res.Mail = m

	// A database of the phase's own, migrated.
	phase, err := b.inProcessEnv(ctx, "_mail")
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	defer phase.closeInto(&err)
	name := phase.pg.name
	m.Database = name

	env := &mailEnv{phaseEnv: phase, oauth: oauthtest.NewServer(), gmail: gmailtest.NewServer(),
		md: helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorIntegration, ID: "google:bench"},
			Channel: helpdeskflow.ChannelIntegration}}
	defer env.oauth.Close()
	defer env.gmail.Close()
	env.gmail.SetAddress(mailMailbox)
	env.gmail.SetTokenCheck(env.oauth.ValidAccessToken)
	m.Gmail = fmt.Sprintf("gmailtest fake at %s (this process), mailbox %s; OAuth through oauthtest and integrations.Manager", env.gmail.URL(), mailMailbox)

	// The mailbox, built once.
	t := time.Now()
	env.corpus = makeMailCorpus(n, t)
	for i, msg := range env.corpus.msgs {
		thread := ""
		if !msg.first {
			thread = env.corpus.threadGmailID(i)
		}
		id := env.gmail.DeliverAt(msg.raw, thread, msg.at)
		if msg.first {
			env.corpus.setThreadGmailID(msg.thread, id)
		}
	}
	m.BuildSeconds = round3(time.Since(t).Seconds())
	c := env.corpus
	m.Threads, m.Customers, m.Multipart, m.EncodedWords, m.QuotingReplies = c.threads, c.customers, c.multipart, c.encoded, c.quoting
	m.RawBytesAvg = int(c.rawBytes / int64(max(n, 1)))
	logf("mail: %d messages in %d threads from %d customers (%d multipart/alternative, %d with encoded words, %d quoting), avg %d B raw, built in %.1f s (database %s)",
		n, c.threads, c.customers, c.multipart, c.encoded, c.quoting, m.RawBytesAvg, m.BuildSeconds, name)

	var cpuSecs [2]cpuPerOp
	var commits, fetched [2]float64
	for round, pipeline := range mailOrder {
		side, label := 0, "baseline"
		if pipeline {
			side, label = 1, "pipeline"
		}
		logf("mail round %d/%d (%s): %d messages", round+1, len(mailOrder), label, n)
		var p mailRound
		if pipeline {
			p, err = b.mailPipelineRound(ctx, env, round)
		} else {
			p, err = b.mailBaselineRound(ctx, env, round)
		}
		if err != nil {
			return fmt.Errorf("mail round %d (%s): %w", round+1, label, err)
		}
		p.Valid = len(p.Problems) == 0
		if !p.Valid {
			b.res.note("mail round %d (%s) is not valid: %s", round+1, label, strings.Join(p.Problems, "; "))
		}
		cpuSecs[side].addRound(p.CPU, p.Seconds)
		commits[side] += p.Postgres.Commits
		fetched[side] += p.Postgres.Fetched
		b.disturbance(fmt.Sprintf("mail round %d (%s)", round+1, label), p.CPU, 0)
		if !p.CPU.disturbed() && p.CPU.OtherPct+p.CPU.UnattributedPct >= 20 {
			b.res.note("mail round %d (%s): processes outside the benchmark, some of which came and went (%s), used %.0f%% of a core; its figures are unreliable",
				round+1, label, strings.Join(p.CPU.OtherTop, ", "), p.CPU.OtherPct+p.CPU.UnattributedPct)
		}
		if p.CPU.ClickHousePct >= 20 {
			b.res.note("mail round %d (%s): ClickHouse used %.0f%% of a core (merges after an earlier phase?); the round's figures are less reliable",
				round+1, label, p.CPU.ClickHousePct)
		}
		m.Rounds = append(m.Rounds, p)
		logf("mail round %d (%s): %.0f messages/s over %.2f s, %.2f commits/message, valid %v", round+1, label, p.PerSecond, p.Seconds,
			p.CommitsPerMessage, p.Valid)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}

	m.Valid = true
	for side, s := range []*mailSide{&m.Baseline, &m.Pipeline} {
		for _, p := range m.Rounds {
			if p.Pipeline != (side == 1) {
				continue
			}
			s.Rounds++
			s.Messages += p.Messages
			s.Seconds += p.Seconds
			m.Valid = m.Valid && p.Valid
			if !p.Pipeline {
				m.ParseOnly.Messages += int64(n)
				m.ParseOnly.Seconds += p.ParseSeconds
			}
		}
		s.Seconds = round3(s.Seconds)
		if s.Seconds > 0 {
			s.PerSecond = round1(float64(s.Messages) / s.Seconds)
		}
		if s.Messages > 0 {
			s.CPUPerMessageMs = cpuSecs[side].msPer(s.Messages)
			s.CommitsPerMessage = round3(commits[side] / float64(s.Messages))
			s.TuplesPerMessage = round1(fetched[side] / float64(s.Messages))
		}
	}
	m.Valid = m.Valid && m.Baseline.Rounds > 0 && m.Pipeline.Rounds > 0
	m.ParseOnly.Seconds = round3(m.ParseOnly.Seconds)
	if m.ParseOnly.Seconds > 0 {
		m.ParseOnly.PerSecond = round1(float64(m.ParseOnly.Messages) / m.ParseOnly.Seconds)
	}
	if m.Baseline.PerSecond > 0 {
		m.Ratio = round3(m.Pipeline.PerSecond / m.Baseline.PerSecond)
	}

	logf("mail: fetch+parse only (gmail.Client list, get and mail.Parse of %d messages, sequential)", n)
	m.FetchParse = mailFetchAndParse(ctx, env)
	if m.FetchParse.Error != "" {
		b.res.note("mail: the fetch+parse measurement failed: %s", m.FetchParse.Error)
	}
	m.Note = m.note()
	logf("mail: %.0f messages/s through the pipeline, %.0f/s by direct commands: ratio %.3f (no target); fetch+parse alone %.0f/s, parse alone %.0f/s",
		m.Pipeline.PerSecond, m.Baseline.PerSecond, m.Ratio, m.FetchParse.PerSecond, m.ParseOnly.PerSecond)
	return nil
}

func mailRoundOrder(order []bool) string {
	var parts []string
	for _, p := range order {
		parts = append(parts, mailSideName(p))
	}
	return strings.Join(parts, ", ")
}

func mailSideName(pipeline bool) string {
	if pipeline {
		return "pipeline"
	}
	return "baseline"
}
