package main

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/integrations"
	"github.com/helpdeskflow/helpdeskflow/internal/poll"
	"github.com/helpdeskflow/helpdeskflow/mailsync"
	"github.com/helpdeskflow/helpdeskflow/mailsync/mail"
)

// mailRoundService is what every round starts with: a service with a pool
// of its own (closed at the end, so its backends flush their statistics)
// and a fresh workspace.
func mailRoundService(ctx context.Context, env *mailEnv, round int) (*service, error) {
	return env.openService(ctx, mailPoolConns, fmt.Sprintf("bench mail round %d", round+1))
}

// finishMailRound closes the round's pool, lets its backends exit (flushing
// their statistics) and reads the statistics delta since pg0.
func finishMailRound(ctx context.Context, s *service, db *pgDatabase, p *mailRound, pg0 pgDBStats, pg0Err error) {
	s.close()
	poll.Sleep(ctx, mailStatsSettle)
	pg1, pg1Err := readPgDBStats(ctx, db)
	if pg0Err != nil || pg1Err != nil {
		p.PostgresError = fmt.Sprint(pg0Err, " / ", pg1Err)
		return
	}
	p.Postgres = pg1.since(pg0)
}

// mailPipelineRound connects the workspace to the mailbox (OAuth) and
// times one SyncDue of a mailsync.Worker, which imports the whole mailbox;
// then checks what Postgres holds.
func (b *bench) mailPipelineRound(ctx context.Context, env *mailEnv, round int) (mailRound, error) {
	n := len(env.corpus.msgs)
	p := mailRound{Pipeline: true}
	s, err := mailRoundService(ctx, env, round)
	if err != nil {
		return p, err
	}
	defer s.close() // finishMailRound closes it first, to read the statistics
	p.Workspace = s.ws.String()
	manager, err := integrations.New(integrations.Config{Store: integrations.AdaptStore(s.rooms.connections), Sealer: env.keys,
		Providers: map[string]oauth.Provider{mailsync.ProviderGmail: env.oauth.Provider(mailsync.ProviderGmail)},
		StateKey:  bytes.Repeat([]byte("bench-mail-state"), 2)})
	if err != nil {
		return p, err
	}
	conn, err := connectGmail(ctx, manager, env.oauth, s.ws)
	if err != nil {
		return p, err
	}
	p.Connection = conn.ID.String()
	if env.token, err = manager.AccessToken(ctx, s.ws, conn.ID); err != nil {
		return p, fmt.Errorf("access token: %w", err)
	}

	importer := &timedImporter{Importer: s.svc, results: map[string]int{}}
	tokens := &timedTokens{Tokens: manager}
	store := &timedMailStore{Store: mailStores{s.rooms.connections, s.rooms.mail}}
	worker := mailsync.NewWorker(mailsync.Config{Store: store, Importer: importer, Tokens: tokens, GmailBaseURL: env.gmail.URL(),
		MaxBackfill: n, Logger: env.logger,
		// Finished connections of earlier rounds are not due again
		// during the phase: SyncDue claims this round's alone.
		Interval: map[string]time.Duration{mailsync.ProviderGmail: 24 * time.Hour}, MaxBackoff: 24 * time.Hour})

	calls0 := env.gmail.Calls()
	pg0, pg0Err := readPgDBStats(ctx, env.pg)
	cpu0 := b.procs.snap()
	start := time.Now()
	synced, err := worker.SyncDue(ctx)
	elapsed := time.Since(start)
	p.CPU = split(cpu0, b.procs.snap(), runtime.NumCPU())
	if err != nil {
		return p, fmt.Errorf("SyncDue: %w", err)
	}
	finishMailRound(ctx, s, env.pg, &p, pg0, pg0Err)

	p.Synced = synced
	p.Seconds = round3(elapsed.Seconds())
	p.GmailRequests = map[string]int{}
	for op, v := range env.gmail.Calls() {
		if d := v - calls0[op]; d > 0 {
			p.GmailRequests[op] = d
		}
	}
	p.Imported = importer.results
	p.ImportSeconds = round3(importer.total.Seconds())
	if k := len(importer.each) / 10; k > 0 {
		mean := func(ds []time.Duration) float64 {
			var t time.Duration
			for _, d := range ds {
				t += d
			}
			return round3(float64(t) / float64(len(ds)) / float64(time.Millisecond))
		}
		p.ImportFirstTenthMs, p.ImportLastTenthMs = mean(importer.each[:k]), mean(importer.each[len(importer.each)-k:])
		sum := summarize(slices.Clone(importer.each))
		p.ImportMs = &sum
	}
	p.TokenSeconds, p.TokenCalls = round3(tokens.total.Seconds()), tokens.calls
	p.StoreSeconds, p.StoreCalls = round3(store.total.Seconds()), store.calls
	p.OtherSeconds = round3((elapsed - importer.total - tokens.total - store.total).Seconds())

	// What Postgres holds.
	if synced != 1 {
		p.Problems = append(p.Problems, fmt.Sprintf("SyncDue synced %d mailboxes, not 1", synced))
	}
	rows, err := env.pg.queryRows(ctx, `SELECT count(*) FILTER (WHERE ticket_id IS NOT NULL), count(*) FILTER (WHERE skipped <> ''),
		count(DISTINCT ticket_id) FROM mail_messages WHERE connection_id = $1`, conn.ID)
	if err != nil || len(rows) != 1 || len(rows[0]) != 3 {
		return p, fmt.Errorf("count the mail records: %v", err)
	}
	p.MailRecords, p.SkippedRecords, p.DistinctTickets = toInt64(rows[0][0]), toInt64(rows[0][1]), toInt64(rows[0][2])
	if p.MailRecords != int64(n) {
		p.Problems = append(p.Problems, fmt.Sprintf("%d mail records with a ticket, not %d", p.MailRecords, n))
	}
	if p.SkippedRecords > 0 {
		p.Problems = append(p.Problems, fmt.Sprintf("%d messages skipped", p.SkippedRecords))
	}
	if p.DistinctTickets != int64(env.corpus.threads) {
		p.Problems = append(p.Problems, fmt.Sprintf("the mail records name %d tickets, not %d", p.DistinctTickets, env.corpus.threads))
	}
	if err := mailCountEvents(ctx, env.pg, s.ws, &p, env.corpus); err != nil {
		return p, err
	}
	if st, err := env.pg.queryRows(ctx, `SELECT coalesce(last_error_class, ''), coalesce(last_error, '') FROM integration_connections WHERE id = $1`, conn.ID); err == nil &&
		len(st) == 1 && fmt.Sprint(st[0][0]) != "" {
		p.LastError = fmt.Sprint(st[0][0], ": ", st[0][1])
		p.Problems = append(p.Problems, "the sync failed: "+p.LastError)
	}
	p.Messages = min(p.MailRecords, int64(n))
	if p.Seconds > 0 {
		p.PerSecond = round1(float64(p.Messages) / p.Seconds)
	}
	if p.Postgres.Commits > 0 && p.Messages > 0 {
		p.CommitsPerMessage = round3(p.Postgres.Commits / float64(p.Messages))
		p.TuplesPerMessage = round1(p.Postgres.Fetched / float64(p.Messages))
	}
	return p, nil
}

// mailBaselineRound parses every message (not timed), then times making
// the same tickets and messages with CreateTicket and AddMessage, one
// after the other as the sync does; then checks what Postgres holds.
func (b *bench) mailBaselineRound(ctx context.Context, env *mailEnv, round int) (mailRound, error) {
	c := env.corpus
	p := mailRound{}
	s, err := mailRoundService(ctx, env, round)
	if err != nil {
		return p, err
	}
	defer s.close() // finishMailRound closes it first, to read the statistics
	p.Workspace = s.ws.String()

	// Parse and convert beforehand: the same customer, subject and bodies
	// the sync stores (a reply without its quoted history).
	type op struct {
		create tickets.CreateTicket
		add    tickets.AddMessage
	}
	ops := make([]op, len(c.msgs))
	t := time.Now()
	parsed := make([]mail.Message, len(c.msgs))
	for i, msg := range c.msgs {
		if parsed[i], err = mail.Parse(msg.raw); err != nil {
			return p, fmt.Errorf("parse message %d: %w", i, err)
		}
	}
	p.ParseSeconds = round3(time.Since(t).Seconds())
	for i, m := range parsed {
		full, reply := mailBodies(m)
		if c.msgs[i].first {
			ops[i].create = tickets.CreateTicket{Subject: strings.TrimSpace(m.Subject), Customer: tickets.CustomerRef{Email: m.From.Email, Name: m.From.Name},
				Message: tickets.NewTicketMessage{Body: full, AuthorType: helpdeskflow.AuthorCustomer}}
		} else {
			ops[i].add = tickets.AddMessage{Body: reply, AuthorType: helpdeskflow.AuthorCustomer}
		}
	}
	parsed = nil

	ticketOf := make([]uuid.UUID, c.threads)
	var createD, addD time.Duration
	var errN int64
	pg0, pg0Err := readPgDBStats(ctx, env.pg)
	cpu0 := b.procs.snap()
	start := time.Now()
	for i, msg := range c.msgs {
		if ctx.Err() != nil {
			break
		}
		t := time.Now()
		var err error
		if msg.first {
			var tk helpdeskflow.Ticket
			tk, err = s.svc.CreateTicket(ctx, s.ws, env.md, ops[i].create)
			ticketOf[msg.thread] = tk.ID
			createD += time.Since(t)
		} else {
			_, err = s.svc.AddMessage(ctx, s.ws, env.md, ticketOf[msg.thread], nil, ops[i].add, false)
			addD += time.Since(t)
		}
		if err != nil {
			errN++
			if p.FirstError == "" {
				p.FirstError = fmt.Sprintf("message %d: %v", i, err)
			}
		}
	}
	elapsed := time.Since(start)
	p.CPU = split(cpu0, b.procs.snap(), runtime.NumCPU())
	finishMailRound(ctx, s, env.pg, &p, pg0, pg0Err)

	p.Seconds = round3(elapsed.Seconds())
	p.CreateSeconds, p.AddMessageSeconds = round3(createD.Seconds()), round3(addD.Seconds())
	p.Errors = errN
	if errN > 0 {
		p.Problems = append(p.Problems, fmt.Sprintf("%d commands failed; the first: %s", errN, p.FirstError))
	}
	if err := mailCountEvents(ctx, env.pg, s.ws, &p, c); err != nil {
		return p, err
	}
	p.Messages = min(p.TicketsCreated+p.MessagesAdded, int64(len(c.msgs)))
	if p.Seconds > 0 {
		p.PerSecond = round1(float64(p.Messages) / p.Seconds)
	}
	if p.Postgres.Commits > 0 && p.Messages > 0 {
		p.CommitsPerMessage = round3(p.Postgres.Commits / float64(p.Messages))
		p.TuplesPerMessage = round1(p.Postgres.Fetched / float64(p.Messages))
	}
	return p, nil
}

// mailCountEvents counts the workspace's ticket.created and
// ticket.message_added events, which must be one per thread and one per
// reply.
func mailCountEvents(ctx context.Context, db *pgDatabase, ws uuid.UUID, p *mailRound, c *mailCorpus) error {
	rows, err := db.queryRows(ctx, `SELECT count(*) FILTER (WHERE type = $2), count(*) FILTER (WHERE type = $3) FROM events WHERE workspace_id = $1`,
		ws, helpdeskflow.EventTicketCreated, helpdeskflow.EventTicketMessageAdded)
	if err != nil || len(rows) != 1 || len(rows[0]) != 2 {
		return fmt.Errorf("count the events: %v", err)
	}
	p.TicketsCreated, p.MessagesAdded = toInt64(rows[0][0]), toInt64(rows[0][1])
	if p.TicketsCreated != int64(c.threads) {
		p.Problems = append(p.Problems, fmt.Sprintf("%d ticket.created events, not %d (one per thread)", p.TicketsCreated, c.threads))
	}
	if want := int64(len(c.msgs) - c.threads); p.MessagesAdded != want {
		p.Problems = append(p.Problems, fmt.Sprintf("%d ticket.message_added events, not %d (one per reply)", p.MessagesAdded, want))
	}
	return nil
}

// mailBodies is the sync's rendering of a message's body as HTML: whole,
// and without the quoted history a reply carries.
func mailBodies(m mail.Message) (full, reply string) {
	if strings.TrimSpace(m.HTMLBody) != "" {
		full, reply = m.HTMLBody, mail.StripQuotedHTML(m.HTMLBody)
	} else {
		full, reply = mail.TextToHTML(m.TextBody), mail.TextToHTML(mail.StripQuoted(m.TextBody))
	}
	if strings.TrimSpace(reply) == "" {
		reply = full
	}
	return full, reply
}
