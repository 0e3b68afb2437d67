package main

import (
	"fmt"
	"io"
	"strings"
)

// mailCPURows adds the mail rounds to a CPU split table.
func (r *results) mailCPURows(row func(name string, s cpuSplit)) {
	if m := r.Mail; m != nil {
		for i, p := range m.Rounds {
			row(fmt.Sprintf("mail %d %s", i+1, mailSideName(p.Pipeline)), p.CPU)
		}
	}
}

// note explains the ratio: what the pipeline does that the baseline does
// not, and where its time went.
func (m *mailResult) note() string {
	var import_, token, store, other, secs float64
	var tokenCalls int
	for _, p := range m.Rounds {
		if p.Pipeline {
			import_ += p.ImportSeconds
			token += p.TokenSeconds
			store += p.StoreSeconds
			other += p.OtherSeconds
			secs += p.Seconds
			tokenCalls += p.TokenCalls
		}
	}
	s := "No target: the ratio is what the mail path costs on top of the commands that make the same tickets and messages. " +
		"Both sides make one ticket per thread and one customer message per reply, one after the other, in fresh workspaces, on the same database and pool size. " +
		"The pipeline adds, per message: a Gmail API request over loopback HTTP (JSON, base64url of the raw message) answered by the fake in this process, an OAuth access token lookup (a Postgres transaction locking the connection's row) before every Gmail request, mail.Parse, the conversion, and inside ImportMail a mailbox advisory lock, a dedupe lookup, a thread lookup and the mail_messages insert; per 200 messages a dedupe query and a lease extension. " +
		"The baseline's bodies were parsed before timing, and AddMessage also reads the customer back for its answer."
	if secs > 0 {
		pct := func(v float64) float64 { return v / secs * 100 }
		s += fmt.Sprintf(" Of the pipeline rounds' %.1f s: ImportMail %.0f%%, access tokens %.0f%% (%d calls), the sync's store calls %.0f%%, the rest (Gmail requests, parsing, conversion) %.0f%%.",
			secs, pct(import_), pct(token), tokenCalls, pct(store), pct(other))
	}
	if m.Pipeline.TuplesPerMessage > 50*(m.Baseline.TuplesPerMessage+1) {
		s += fmt.Sprintf(" Postgres fetched %.0f tuples per imported message against %.0f per baseline message: some statement of the import scans rows in proportion to the mail records already stored (see each round's figure; it depends on the plan Postgres chose for the round's connections).",
			m.Pipeline.TuplesPerMessage, m.Baseline.TuplesPerMessage)
	}
	if m.FetchParse.PerSecond > 0 {
		s += fmt.Sprintf(" Fetching and parsing alone runs at %.0f messages/s (%.0f%% of it in Gmail requests).", m.FetchParse.PerSecond,
			m.FetchParse.GetSeconds/max(m.FetchParse.Seconds, 1e-9)*100)
	}
	return s
}

// verdict states the ratio and whether the rounds were valid.
func (m *mailResult) verdict() string {
	why := ""
	if !m.Valid {
		var ps []string
		for i, p := range m.Rounds {
			for _, pr := range p.Problems {
				ps = append(ps, fmt.Sprintf("round %d: %s", i+1, pr))
			}
		}
		why = "; not valid: " + strings.Join(ps, "; ")
	}
	return fmt.Sprintf("Mail import through the pipeline ÷ direct commands: ratio %.3f = %.1f / %.1f messages per second (no target%s)",
		m.Ratio, m.Pipeline.PerSecond, m.Baseline.PerSecond, why)
}

// printMail writes the mail section of the table.
func (r *results) printMail(w io.Writer) {
	m := r.Mail
	if m == nil {
		return
	}
	fmt.Fprintf(w, "\nMail import: %s messages in %s threads from %s customers (%d multipart/alternative, %d with encoded words, %d replies quoting), avg %d B raw; rounds %s\n",
		thousands(m.Messages), thousands(m.Threads), thousands(m.Customers), m.Multipart, m.EncodedWords, m.QuotingReplies, m.RawBytesAvg, m.RoundOrder)
	fmt.Fprintf(w, "%-10s %9s %9s %12s %11s %11s %11s %11s\n", "", "msgs/s", "seconds", "commits/msg", "tuples/msg", "bench CPU", "pg CPU", "machine")
	for _, s := range []struct {
		name string
		s    mailSide
	}{{"baseline", m.Baseline}, {"pipeline", m.Pipeline}} {
		x := s.s.CPUPerMessageMs
		fmt.Fprintf(w, "%-10s %9.0f %9.2f %12.2f %11.0f %11.3f %11.3f %11.3f\n", s.name, s.s.PerSecond, s.s.Seconds, s.s.CommitsPerMessage, s.s.TuplesPerMessage,
			x.Bench, x.Postgres, x.Machine)
	}
	fmt.Fprintf(w, "  (Postgres commits and tuples fetched per message; CPU in ms per message)\n")
	for i, p := range m.Rounds {
		fmt.Fprintf(w, "  round %d %-8s %7.0f/s over %6.2f s, %.2f commits and %.0f tuples fetched/message", i+1, mailSideName(p.Pipeline), p.PerSecond, p.Seconds,
			p.CommitsPerMessage, p.TuplesPerMessage)
		if p.Pipeline {
			fmt.Fprintf(w, "; ImportMail %.2f s (mean %.2f ms over the first tenth, %.2f ms over the last), tokens %.2f s (%d), store %.2f s (%d), fetch+parse+convert %.2f s; Gmail %s",
				p.ImportSeconds, p.ImportFirstTenthMs, p.ImportLastTenthMs, p.TokenSeconds, p.TokenCalls, p.StoreSeconds, p.StoreCalls, p.OtherSeconds,
				counts(toInt64Map(p.GmailRequests)))
		} else {
			fmt.Fprintf(w, "; CreateTicket %.2f s, AddMessage %.2f s (parsed beforehand in %.2f s)", p.CreateSeconds, p.AddMessageSeconds, p.ParseSeconds)
		}
		if len(p.Problems) > 0 {
			fmt.Fprintf(w, "; NOT VALID: %s", strings.Join(p.Problems, "; "))
		}
		fmt.Fprintln(w)
	}
	f := m.FetchParse
	fmt.Fprintf(w, "  fetch+parse only: %.0f msgs/s (list %.2f s, get %.2f s, parse %.2f s)%s; parse only: %.0f msgs/s\n",
		f.PerSecond, f.ListSeconds, f.GetSeconds, f.ParseSeconds, errSuffix(f.Error), m.ParseOnly.PerSecond)
	fmt.Fprintf(w, "%s\n", m.verdict())
}

// markdownMail writes the "Mail import" section of summary.md.
func (r *results) markdownMail(w io.Writer) {
	m := r.Mail
	if m == nil {
		return
	}
	fmt.Fprintf(w, "\n## Mail import\n\n")
	fmt.Fprintf(w, "Messages imported per second from a Gmail mailbox of %s messages. In the bench process, on a Postgres database of its own (`%s`, migrated; pools of %d connections, one per round; the dev process is idle). "+
		"The mailbox: %s. %s threads of 1–4 messages from %s customers (some with several threads), %d of them multipart/alternative with an HTML part, %d with RFC 2047 encoded words (UTF-8 names or subjects), %d replies quoting the message before, average %d bytes raw; replies carry In-Reply-To and References; built and delivered in %.1f s. "+
		"A **pipeline** round connects a fresh workspace to the mailbox (OAuth through `integrations.Manager`) and times one `mailsync.Worker.SyncDue`: the connection's first sync lists the 7-day window and, oldest first, fetches each message raw (`gmail.Client.Get`), parses it (`mail.Parse`), converts it and calls `tickets.Service.ImportMail`. "+
		"A **baseline** round parses the same raw messages before timing, then makes the same tickets and messages in a fresh workspace with `CreateTicket` (each thread's first message) and `AddMessage` (each reply, without its quoted history, author customer), one after the other. "+
		"Every round then checks what Postgres holds: one `ticket.created` per thread, one `ticket.message_added` per reply and, for the pipeline, a `mail_messages` record with a ticket per message. Rounds in the order %s.\n\n",
		thousands(m.Messages), m.Database, m.PoolConns, m.Gmail, thousands(m.Threads), thousands(m.Customers), m.Multipart, m.EncodedWords, m.QuotingReplies, m.RawBytesAvg, m.BuildSeconds, m.RoundOrder)
	fmt.Fprintf(w, "| side | rounds | messages | seconds | messages/s | Postgres commits/message | tuples fetched/message | CPU ms/message: bench | postgres | dev | machine |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range []struct {
		name string
		s    mailSide
	}{{"baseline (direct commands)", m.Baseline}, {"pipeline (mail sync)", m.Pipeline}} {
		x := s.s.CPUPerMessageMs
		fmt.Fprintf(w, "| %s | %d | %d | %.2f | %.0f | %.2f | %.0f | %.3f | %.3f | %.3f | %.3f |\n", s.name, s.s.Rounds, s.s.Messages, s.s.Seconds, s.s.PerSecond,
			s.s.CommitsPerMessage, s.s.TuplesPerMessage, x.Bench, x.Postgres, x.Dev, x.Machine)
	}
	fmt.Fprintf(w, "\n**%s.**\n\n", m.verdict())
	f := m.FetchParse
	fmt.Fprintf(w, "Fetch + parse alone (a `gmail.Client` listing the mailbox and `Get` + `mail.Parse` of every message, sequentially, once after the rounds): **%.0f messages/s** (%d messages, %.2f s: list %.2f s, get %.2f s, parse %.2f s, %.1f MB raw)%s. `mail.Parse` alone (the baseline rounds' preparation): %.0f messages/s.\n\n",
		f.PerSecond, f.Messages, f.Seconds, f.ListSeconds, f.GetSeconds, f.ParseSeconds, float64(f.Bytes)/1e6, errSuffix(f.Error), m.ParseOnly.PerSecond)
	fmt.Fprintf(w, "| round | side | messages/s | seconds | commits / tuples fetched per message | where the time went | Gmail requests | checks |\n|---|---|---|---|---|---|---|---|\n")
	for i, p := range m.Rounds {
		where := fmt.Sprintf("CreateTicket %.2f s, AddMessage %.2f s (parse beforehand %.2f s)", p.CreateSeconds, p.AddMessageSeconds, p.ParseSeconds)
		gm := ""
		if p.Pipeline {
			where = fmt.Sprintf("ImportMail %.2f s (mean %.2f ms over the first tenth of the mailbox, %.2f ms over the last), access tokens %.2f s (%d calls), sync store calls %.2f s (%d), Gmail + parse + convert %.2f s",
				p.ImportSeconds, p.ImportFirstTenthMs, p.ImportLastTenthMs, p.TokenSeconds, p.TokenCalls, p.StoreSeconds, p.StoreCalls, p.OtherSeconds)
			gm = counts(toInt64Map(p.GmailRequests))
		}
		check := fmt.Sprintf("ok: %d tickets, %d replies", p.TicketsCreated, p.MessagesAdded)
		if len(p.Problems) > 0 {
			check = "**not valid**: " + strings.Join(p.Problems, "; ")
		}
		fmt.Fprintf(w, "| %d | %s | %.0f | %.2f | %.2f / %.0f | %s | %s | %s |\n", i+1, mailSideName(p.Pipeline), p.PerSecond, p.Seconds, p.CommitsPerMessage,
			p.TuplesPerMessage, where, gm, check)
	}
	fmt.Fprintf(w, "\nCommits and tuples fetched per message are `pg_stat_database.xact_commit` and `tup_fetched` of the phase's database over the round (the round's pool is closed before the second reading, so its backends have flushed their counters); they include the store's NOTIFY after appends. The bench process holds the sync, the Gmail and OAuth fakes and the commands alike; `postgres` CPU is the whole server.\n\n")
	fmt.Fprintf(w, "%s\n", m.Note)
}

func toInt64Map(m map[string]int) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = int64(v)
	}
	return out
}
