package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/clients/gmail"
	"github.com/helpdeskflow/helpdeskflow/clients/gmail/gmailtest"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth"
	"github.com/helpdeskflow/helpdeskflow/clients/oauth/oauthtest"
	"github.com/helpdeskflow/helpdeskflow/commands/access"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/eventstore"
	"github.com/helpdeskflow/helpdeskflow/integrations"
	"github.com/helpdeskflow/helpdeskflow/internal/secretbox"
	"github.com/helpdeskflow/helpdeskflow/mailsync"
	"github.com/helpdeskflow/helpdeskflow/mailsync/mail"
)

// The mail phase: messages imported per second from a Gmail mailbox of
// -mail-messages messages through the whole import pipeline (a
// mailsync.Worker's first sync of a fresh connection: list the window,
// fetch each message raw over the Gmail API, mail.Parse, convert,
// commands.Service.ImportMail), against the same messages made by
// commands.Service.CreateTicket and AddMessage directly, with no mail on
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

// mailResult is the mail phase as results.json shows it.
type mailResult struct {
	Messages       int     `json:"messages"`
	Threads        int     `json:"threads"`
	Customers      int     `json:"customers"`
	Multipart      int     `json:"multipart_alternative"`
	EncodedWords   int     `json:"with_rfc2047_encoded_words"`
	QuotingReplies int     `json:"replies_quoting_history"`
	RawBytesAvg    int     `json:"raw_bytes_avg"`
	BuildSeconds   float64 `json:"mailbox_build_seconds"`
	RoundOrder     string  `json:"round_order"`
	Database       string  `json:"postgres_database"`
	PoolConns      int     `json:"pool_connections"`
	Gmail          string  `json:"gmail"`

	Baseline mailSide `json:"baseline"`
	Pipeline mailSide `json:"pipeline"`
	Ratio    float64  `json:"ratio_per_second"` // Pipeline ÷ Baseline
	Valid    bool     `json:"valid"`

	// ParseOnly is mail.Parse of every raw message, as the baseline rounds
	// do before they are timed; FetchParse is a gmail.Client listing the
	// mailbox and fetching and parsing every message, sequentially, once.
	ParseOnly  mailRate       `json:"parse_only"`
	FetchParse mailFetchParse `json:"fetch_and_parse"`
	Rounds     []mailRound    `json:"rounds"`
	Note       string         `json:"note"`
}

// mailSide is one side of the comparison: its rounds together.
type mailSide struct {
	Rounds            int      `json:"rounds"`
	Messages          int64    `json:"messages"`
	Seconds           float64  `json:"seconds"`
	PerSecond         float64  `json:"per_second"` // Messages ÷ Seconds
	CommitsPerMessage float64  `json:"postgres_commits_per_message"`
	TuplesPerMessage  float64  `json:"postgres_tuples_fetched_per_message"`
	CPUPerMessageMs   cpuPerOp `json:"cpu_ms_per_message"`
}

// mailRate is a count over a time.
type mailRate struct {
	Messages  int64   `json:"messages"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
}

// mailFetchParse is the fetch+parse measurement: where the pipeline's time
// goes outside Postgres.
type mailFetchParse struct {
	mailRate
	ListSeconds  float64 `json:"list_seconds"`
	GetSeconds   float64 `json:"get_seconds"`
	ParseSeconds float64 `json:"parse_seconds"`
	Bytes        int64   `json:"raw_bytes"`
	Error        string  `json:"error,omitempty"`
}

// mailRound is one round: the pipeline's sync of a fresh connection, or the
// baseline's commands, each in a fresh workspace.
type mailRound struct {
	Pipeline  bool     `json:"pipeline"`
	Workspace string   `json:"workspace"`
	Messages  int64    `json:"messages"` // imported, as the checks afterwards found them
	Seconds   float64  `json:"seconds"`
	PerSecond float64  `json:"per_second"`
	Valid     bool     `json:"valid"`
	Problems  []string `json:"problems,omitempty"`
	CPU       cpuSplit `json:"cpu"`

	// What Postgres holds afterwards.
	TicketsCreated int64 `json:"ticket_created_events"`
	MessagesAdded  int64 `json:"message_added_events"`

	// pg_stat_database of the phase's database over the round (the
	// round's pool is closed before the second reading, so its backends
	// have flushed their counters).
	Postgres          pgDBStats `json:"pg_stat_database_delta"`
	CommitsPerMessage float64   `json:"postgres_commits_per_message"`
	TuplesPerMessage  float64   `json:"postgres_tuples_fetched_per_message"`
	PostgresError     string    `json:"postgres_error,omitempty"`

	// The baseline only.
	ParseSeconds      float64 `json:"parse_seconds_before_timing,omitempty"`
	CreateSeconds     float64 `json:"create_ticket_seconds,omitempty"`
	AddMessageSeconds float64 `json:"add_message_seconds,omitempty"`
	Errors            int64   `json:"errors,omitempty"`
	FirstError        string  `json:"first_error,omitempty"`

	// The pipeline only.
	Connection      string         `json:"connection,omitempty"`
	Synced          int            `json:"mailboxes_synced,omitempty"`
	MailRecords     int64          `json:"mail_records_with_ticket,omitempty"`
	SkippedRecords  int64          `json:"mail_records_skipped,omitempty"`
	DistinctTickets int64          `json:"distinct_tickets,omitempty"`
	Imported        map[string]int `json:"imported,omitempty"` // ImportMail results: ticket, message, duplicate, skipped, error
	GmailRequests   map[string]int `json:"gmail_requests,omitempty"`
	// Time inside the pipeline's calls, timed around the worker's
	// dependencies: ImportMail (its Postgres transaction, sanitizing,
	// automations), the OAuth token (a Postgres transaction per Gmail
	// request) and the sync's own store calls (claim, dedupe lookups,
	// lease extensions, finish). The rest is the worker's own: Gmail
	// requests, mail.Parse, convert.
	ImportSeconds float64 `json:"import_mail_seconds,omitempty"`
	// ImportMs is each ImportMail call's time; its mean over the first
	// and the last tenth of the mailbox shows whether an import costs more
	// as the mailbox's records grow.
	ImportMs           *latencySummary `json:"import_mail_ms,omitempty"`
	ImportFirstTenthMs float64         `json:"import_mail_mean_ms_first_tenth,omitempty"`
	ImportLastTenthMs  float64         `json:"import_mail_mean_ms_last_tenth,omitempty"`
	TokenSeconds       float64         `json:"access_token_seconds,omitempty"`
	TokenCalls         int             `json:"access_token_calls,omitempty"`
	StoreSeconds       float64         `json:"sync_store_seconds,omitempty"`
	StoreCalls         int             `json:"sync_store_calls,omitempty"`
	OtherSeconds       float64         `json:"fetch_parse_convert_seconds,omitempty"`
	LastError          string          `json:"connection_last_error,omitempty"`
}

// ---- The mailbox ----

// mailCorpus is the fake mailbox's content, built once: messages in
// threads of 1–4, oldest first.
type mailCorpus struct {
	msgs      []mailMsg
	threads   int
	customers int
	multipart int
	encoded   int
	quoting   int
	rawBytes  int64
	// gmailThreads are the threads' Gmail ids, once delivered.
	gmailThreads []string
}

// mailMsg is one message of the mailbox.
type mailMsg struct {
	raw    []byte
	thread int // index of its thread
	first  bool
	at     time.Time
}

type mailCustomer struct {
	name, email string
	utf8        bool
}

type mailThread struct {
	customer, order, amount int
	subject, product        string
	// The previous message, for the next one's headers and quote.
	prevID, prevText, prevHTML string
	prevAt                     time.Time
	refs                       []string
	gmailID                    string
}

var (
	mailUTF8Names = []string{"Zoë Müller", "José Núñez", "Łukasz Wójcik", "Søren Åberg", "Chloé Lefèvre", "Jürgen Groß",
		"Ayşe Yılmaz", "Ренат Ибрагимов", "山田 太郎", "Αλέξης Παπαδόπουλος", "Jiří Dvořák", "Inés Peña"}
	mailUTF8Subjects = []string{"Rückerstattung für Bestellung %d", "Commande %d arrivée endommagée", "¿Dónde está mi pedido %d?",
		"Zamówienie %d — błędna faktura", "注文 %d がまだ届きません", "Заказ %d: двойное списание"}
	mailGreetings = []string{"Hello support team,", "Hi there,", "Dear HelpDeskFlow support,", "Good morning,", "Hello,"}
	mailSentences = []string{
		"I ordered the {product} (order #{order}) on {date} and it arrived with a cracked housing.",
		"The box looked fine from the outside, so it must have happened before packing.",
		"Could you send a replacement or refund the {amount} EUR?",
		"I would prefer a replacement, as I need it for work next week.",
		"The tracking page has said \"in transit\" for six days now, and the carrier does not answer the phone.",
		"I was charged twice: once on {date} and again two days later, both times {amount} EUR.",
		"Attached to my previous mail you will find photos of the damage and of the shipping label.",
		"Since the last update I cannot log in anymore; the page just reloads without any error message.",
		"I already tried another browser, cleared the cache and reset my password, without any luck.",
		"The invoice for order #{order} shows 19% VAT although we are a registered business in Austria.",
		"Could you please correct the invoice and send it to our accounting address?",
		"Our team uses the {product} every day, so this is rather urgent for us.",
		"Please let me know if you need the serial number, it is SN-{serial}.",
		"Thank you in advance for looking into this.",
		"I have been a customer for years and this is the first time something like this happened.",
		"If a refund is easier for you, that is fine as well.",
	}
	mailUTF8Sentences = []string{
		"Vielen Dank für Ihre schnelle Hilfe — das Gerät ist leider schon wieder kaputt.",
		"Merci d’avance pour votre réponse, c’est assez urgent.",
		"¿Podrían confirmarme la fecha de entrega, por favor?",
		"Der Betrag von {amount} € wurde zweimal abgebucht.",
		"Dziękuję za szybką odpowiedź.",
		"Спасибо, жду вашего ответа.",
	}
	mailFollowUps = []string{"Any news on this?", "Just following up on my message below.", "Sorry to bother you again.",
		"One more detail I forgot to mention:", "I have not heard back yet."}
)

func mailCustomerOf(c int) mailCustomer {
	if c%3 == 0 {
		return mailCustomer{name: mailUTF8Names[(c/3)%len(mailUTF8Names)], email: fmt.Sprintf("kunde.%05d@mail.example.net", c), utf8: true}
	}
	first, last := firstNames[c%len(firstNames)], lastNames[(c/len(firstNames))%len(lastNames)]
	return mailCustomer{name: first + " " + last, email: fmt.Sprintf("%s.%s.%05d@example.com", strings.ToLower(first), strings.ToLower(last), c)}
}

// makeMailCorpus builds n messages, deterministically but for the times:
// threads of 1–4 messages (uniform, 2.5 on average), each from a customer
// of a pool of ¾ as many as threads (so some write several threads), their
// messages interleaved in time over the mailSpan before now. Bodies are
// plain text of 300–2,000 bytes, a third multipart/alternative with an
// HTML part; most replies quote the message before them; non-ASCII names
// and subjects are RFC 2047 encoded words.
func makeMailCorpus(n int, now time.Time) *mailCorpus {
	r := rand.New(rand.NewPCG(mailSeed, mailSeed+1))
	var sizes []int
	for total := 0; total < n; {
		s := min(1+r.IntN(4), n-total)
		sizes = append(sizes, s)
		total += s
	}
	pool := max(1, len(sizes)*3/4)
	threads := make([]mailThread, len(sizes))
	type slot struct {
		key       float64
		thread, k int
	}
	slots := make([]slot, 0, n)
	seen := map[int]bool{}
	for i, s := range sizes {
		t := &threads[i]
		t.customer = r.IntN(pool)
		seen[t.customer] = true
		t.order, t.amount = 10000+r.IntN(90000), 20+r.IntN(900)
		t.product = products[r.IntN(len(products))]
		if mailCustomerOf(t.customer).utf8 && r.IntN(2) == 0 {
			t.subject = fmt.Sprintf(mailUTF8Subjects[r.IntN(len(mailUTF8Subjects))], t.order)
		} else {
			t.subject = fmt.Sprintf(subjects[r.IntN(len(subjects))], t.order)
		}
		key := r.Float64()
		for k := range s {
			if k > 0 {
				key += r.Float64() * 0.03 // a reply within about 40 minutes of the one before
			}
			slots = append(slots, slot{key, i, k})
		}
	}
	slices.SortStableFunc(slots, func(a, b slot) int { return cmp.Compare(a.key, b.key) })

	c := &mailCorpus{threads: len(sizes), customers: len(seen), msgs: make([]mailMsg, n)}
	base := now.Add(-mailSpan).Truncate(time.Millisecond)
	step := mailSpan / time.Duration(n+1)
	var buf bytes.Buffer
	for i, s := range slots {
		t := &threads[s.thread]
		cu := mailCustomerOf(t.customer)
		at := base.Add(time.Duration(i+1) * step).Truncate(time.Millisecond)
		reply := s.k > 0
		quote := reply && r.IntN(10) < 7
		alternative := r.IntN(3) == 0

		target := 300 + r.IntN(1701)
		if quote {
			target = 150 + r.IntN(800) // and up to 900 bytes of quote
		}
		text := mailText(r, cu, t, reply, target)
		htmlBody := ""
		if alternative {
			htmlBody = mailHTML(text)
		}
		if quote {
			attribution := fmt.Sprintf("On %s, %s <%s> wrote:", t.prevAt.UTC().Format("Mon, 2 Jan 2006 at 15:04"), cu.name, cu.email)
			text += "\n\n" + attribution + "\n" + quoteLines(capText(t.prevText, 900))
			if alternative {
				prev := t.prevHTML
				if prev == "" {
					prev = mailHTML(capText(t.prevText, 900))
				}
				htmlBody += `<br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">` + html.EscapeString(attribution) +
					`<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">` +
					prev + `</blockquote></div>`
			}
			c.quoting++
		}
		subject := t.subject
		if reply {
			subject = "Re: " + subject
		}
		id := fmt.Sprintf("%016x.%d@mail.bench.example", r.Uint64(), i)
		buf.Reset()
		encoded := writeMail(&buf, r, cu, subject, id, t.prevID, t.refs, at.Add(-time.Duration(5+r.IntN(120))*time.Second), text, htmlBody)
		if encoded {
			c.encoded++
		}
		if alternative {
			c.multipart++
		}
		raw := bytes.Clone(buf.Bytes())
		c.msgs[i] = mailMsg{raw: raw, thread: s.thread, first: !reply, at: at}
		c.rawBytes += int64(len(raw))

		t.refs = append(t.refs, id)
		t.prevID, t.prevAt = id, at
		t.prevText, t.prevHTML = mailTextOnly(text), ""
		if alternative {
			t.prevHTML = mailHTML(t.prevText)
		}
	}
	return c
}

// mailText writes a message's new text: a greeting, sentences up to about
// target bytes in paragraphs, wrapped at 72 columns, and a sign-off.
func mailText(r *rand.Rand, cu mailCustomer, t *mailThread, reply bool, target int) string {
	fill := strings.NewReplacer("{product}", t.product, "{order}", strconv.Itoa(t.order),
		"{amount}", fmt.Sprintf("%d.%02d", t.amount, r.IntN(100)), "{serial}", fmt.Sprintf("%08d", r.IntN(100000000)),
		"{date}", time.Date(2026, time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC).Format("2 January 2006"))
	var paras []string
	var para strings.Builder
	if reply {
		para.WriteString(mailFollowUps[r.IntN(len(mailFollowUps))])
	}
	// Sentences in a random order, each once before any repeats; a
	// customer with a non-ASCII name writes one in six in another language.
	order := r.Perm(len(mailSentences))
	size := len(cu.name) + 30
	for i := 0; size < target; i++ {
		s := mailSentences[order[i%len(order)]]
		if cu.utf8 && r.IntN(6) == 0 {
			s = mailUTF8Sentences[r.IntN(len(mailUTF8Sentences))]
		}
		s = fill.Replace(s)
		if para.Len() > 0 {
			para.WriteByte(' ')
		}
		para.WriteString(s)
		size += len(s) + 1
		if para.Len() > 250 && r.IntN(2) == 0 {
			paras = append(paras, wrap72(para.String()))
			para.Reset()
			size += 2
		}
	}
	if para.Len() > 0 {
		paras = append(paras, wrap72(para.String()))
	}
	return mailGreetings[r.IntN(len(mailGreetings))] + "\n\n" + strings.Join(paras, "\n\n") + "\n\nKind regards,\n" + cu.name
}

// mailTextOnly is a text without its quoted history (what a later reply
// quotes).
func mailTextOnly(text string) string {
	if i := strings.Index(text, "\n\nOn "); i >= 0 {
		return text[:i]
	}
	return text
}

// wrap72 wraps a paragraph at 72 columns, as plain-text mail clients do.
func wrap72(s string) string {
	var b strings.Builder
	col := 0
	for i, w := range strings.Fields(s) {
		n := utf8.RuneCountInString(w)
		if i > 0 {
			if col+1+n > 72 {
				b.WriteByte('\n')
				col = 0
			} else {
				b.WriteByte(' ')
				col++
			}
		}
		b.WriteString(w)
		col += n
	}
	return b.String()
}

// capText cuts a text at a line end before n bytes.
func capText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if i := strings.LastIndexByte(s[:n], '\n'); i > 0 {
		return s[:i]
	}
	return s[:n]
}

func quoteLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l == "" {
			lines[i] = ">"
		} else {
			lines[i] = "> " + l
		}
	}
	return strings.Join(lines, "\n")
}

// mailHTML is the HTML part a mail client writes for a text.
func mailHTML(text string) string {
	var b strings.Builder
	b.WriteString(`<div dir="ltr">`)
	for _, p := range strings.Split(text, "\n\n") {
		b.WriteString("<p>")
		b.WriteString(strings.ReplaceAll(html.EscapeString(strings.ReplaceAll(p, "\n", " ")), "  ", " "))
		b.WriteString("</p>")
	}
	b.WriteString("</div>")
	return b.String()
}

// writeMail writes a raw message with CRLF line ends and reports whether
// it has RFC 2047 encoded words.
func writeMail(b *bytes.Buffer, r *rand.Rand, cu mailCustomer, subject, id, inReplyTo string, refs []string, date time.Time,
	text, htmlBody string) (encoded bool) {
	word := func(s string) string {
		if isASCII(s) {
			return s
		}
		encoded = true
		if r.IntN(2) == 0 {
			return mime.BEncoding.Encode("UTF-8", s)
		}
		return mime.QEncoding.Encode("UTF-8", s)
	}
	from := word(cu.name)
	if from == cu.name && strings.ContainsAny(from, `"(),.:;<>@[\]`) {
		from = strconv.Quote(from)
	}
	fmt.Fprintf(b, "From: %s <%s>\r\nTo: HelpDeskFlow Support <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n",
		from, cu.email, mailMailbox, word(subject), date.UTC().Format(time.RFC1123Z), id)
	if inReplyTo != "" {
		fmt.Fprintf(b, "In-Reply-To: <%s>\r\nReferences:", inReplyTo)
		for _, ref := range refs {
			fmt.Fprintf(b, " <%s>", ref)
		}
		b.WriteString("\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\n")
	if htmlBody == "" {
		writePart(b, "text/plain", text)
		return encoded
	}
	boundary := fmt.Sprintf("000000000000%016x", r.Uint64())
	fmt.Fprintf(b, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n--%s\r\n", boundary, boundary)
	writePart(b, "text/plain", text)
	fmt.Fprintf(b, "\r\n--%s\r\n", boundary)
	writePart(b, "text/html", htmlBody)
	fmt.Fprintf(b, "\r\n--%s--\r\n", boundary)
	return encoded
}

// writePart writes a text part's header and body: 7bit when it is ASCII
// in short lines, quoted-printable otherwise.
func writePart(b *bytes.Buffer, mediaType, body string) {
	short := true
	for _, l := range strings.Split(body, "\n") {
		if len(l) > 76 {
			short = false
		}
	}
	if isASCII(body) && short {
		fmt.Fprintf(b, "Content-Type: %s; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n", mediaType)
		b.WriteString(strings.ReplaceAll(body, "\n", "\r\n"))
		b.WriteString("\r\n")
		return
	}
	fmt.Fprintf(b, "Content-Type: %s; charset=\"UTF-8\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", mediaType)
	w := quotedprintable.NewWriter(b)
	w.Write([]byte(body))
	w.Close()
	b.WriteString("\r\n")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// ---- The phase ----

// mailEnv is what the rounds share.
type mailEnv struct {
	db     *pgDatabase
	keys   *secretbox.Keyring
	oauth  *oauthtest.Server
	gmail  *gmailtest.Server
	corpus *mailCorpus
	logger *slog.Logger
	md     helpdeskflow.Metadata
	token  string // an access token of the last pipeline round's connection, for the fetch+parse measurement
}

// runMail is the mail phase.
func (b *bench) runMail(ctx context.Context) (err error) {
	n := b.o.mailMessages
	m := &mailResult{Messages: n, RoundOrder: mailRoundOrder(mailOrder), PoolConns: mailPoolConns}
	b.res.Mail = m

	// A database of the phase's own, migrated.
	name := b.pg.name + "_mail"
	db, err := createPostgresDatabase(ctx, os.Getenv("HDF_POSTGRES_URL"), name)
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	m.Database = name
	defer func() {
		if b.o.keep {
			logf("kept Postgres database %s", name)
			db.close()
			return
		}
		if derr := db.drop(); derr != nil {
			err = errors.Join(err, derr)
		}
	}()
	pool, err := eventstore.Connect(ctx, db.url, 2)
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	err = eventstore.Migrate(ctx, pool)
	pool.Close()
	if err != nil {
		return fmt.Errorf("mail: migrate %s: %w", name, err)
	}
	spec, err := secretbox.NewKey("bench1")
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	keys, err := secretbox.ParseKeyring(spec)
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}

	env := &mailEnv{db: db, keys: keys, oauth: oauthtest.NewServer(), gmail: gmailtest.NewServer(),
		logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
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
		sec := func(pct float64) float64 { return pct / 100 * p.Seconds }
		cpuSecs[side].Dev += sec(p.CPU.DevPct)
		cpuSecs[side].Postgres += sec(p.CPU.PostgresPct)
		cpuSecs[side].ClickHouse += sec(p.CPU.ClickHousePct)
		cpuSecs[side].Bench += sec(p.CPU.LoadGenPct)
		cpuSecs[side].Machine += sec(p.CPU.MachineBusyPct * float64(max(p.CPU.Cores, 1)))
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
			per := func(v float64) float64 { return round3(v * 1000 / float64(s.Messages)) }
			x := cpuSecs[side]
			s.CPUPerMessageMs = cpuPerOp{Dev: per(x.Dev), Postgres: per(x.Postgres), ClickHouse: per(x.ClickHouse), Bench: per(x.Bench), Machine: per(x.Machine)}
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

// threadGmailID is the Gmail thread id of message i's thread.
func (c *mailCorpus) threadGmailID(i int) string { return c.gmailThreads[c.msgs[i].thread] }

func (c *mailCorpus) setThreadGmailID(thread int, id string) {
	if c.gmailThreads == nil {
		c.gmailThreads = make([]string, c.threads)
	}
	c.gmailThreads[thread] = id
}

// mailRoundSetup is what every round starts with: a pool of its own (closed
// at the end, so its backends flush their statistics), a store, a service
// and a fresh workspace.
type mailRoundSetup struct {
	pool  interface{ Close() }
	store *eventstore.Store
	svc   *tickets.Service
	ws    uuid.UUID
}

func (b *bench) mailSetup(ctx context.Context, env *mailEnv, round int) (*mailRoundSetup, error) {
	pool, err := eventstore.Connect(ctx, env.db.url, mailPoolConns)
	if err != nil {
		return nil, err
	}
	store, err := eventstore.New(pool, nil)
	if err != nil {
		pool.Close()
		return nil, err
	}
	svc := tickets.New(tickets.AdaptStore(store))
	ws, _, err := access.New(access.AdaptStore(store)).CreateWorkspace(ctx, helpdeskflow.Metadata{Actor: helpdeskflow.Actor{Type: helpdeskflow.ActorSystem, ID: "bench"},
		Channel: helpdeskflow.ChannelSystem}, fmt.Sprintf("bench mail round %d", round+1))
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("create workspace: %w", err)
	}
	return &mailRoundSetup{pool: pool, store: store, svc: svc, ws: ws}, nil
}

// finish closes the round's pool, lets its backends exit (flushing their
// statistics) and reads the statistics delta since pg0.
func (s *mailRoundSetup) finish(ctx context.Context, db *pgDatabase, p *mailRound, pg0 pgDBStats, pg0Err error) {
	s.pool.Close()
	sleepCtx(ctx, mailStatsSettle)
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
	s, err := b.mailSetup(ctx, env, round)
	if err != nil {
		return p, err
	}
	closed := false
	defer func() {
		if !closed {
			s.pool.Close()
		}
	}()
	p.Workspace = s.ws.String()
	manager, err := integrations.New(integrations.Config{Store: integrations.AdaptStore(s.store), Sealer: env.keys,
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
	store := &timedMailStore{Store: s.store}
	worker := mailsync.NewWorker(mailsync.Config{Store: store, Importer: importer, Tokens: tokens, GmailBaseURL: env.gmail.URL(),
		MaxBackfill: n, Logger: env.logger,
		// Finished connections of earlier rounds are not due again
		// during the phase: SyncDue claims this round's alone.
		Interval: map[string]time.Duration{mailsync.ProviderGmail: 24 * time.Hour}, MaxBackoff: 24 * time.Hour})

	calls0 := env.gmail.Calls()
	pg0, pg0Err := readPgDBStats(ctx, env.db)
	cpu0 := b.procs.snap()
	start := time.Now()
	synced, err := worker.SyncDue(ctx)
	elapsed := time.Since(start)
	p.CPU = split(cpu0, b.procs.snap(), runtime.NumCPU())
	if err != nil {
		return p, fmt.Errorf("SyncDue: %w", err)
	}
	closed = true
	s.finish(ctx, env.db, &p, pg0, pg0Err)

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
	rows, err := env.db.queryRows(ctx, `SELECT count(*) FILTER (WHERE ticket_id IS NOT NULL), count(*) FILTER (WHERE skipped <> ''),
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
	if err := mailCountEvents(ctx, env.db, s.ws, &p, env.corpus); err != nil {
		return p, err
	}
	if st, err := env.db.queryRows(ctx, `SELECT coalesce(last_error_class, ''), coalesce(last_error, '') FROM integration_connections WHERE id = $1`, conn.ID); err == nil &&
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
	s, err := b.mailSetup(ctx, env, round)
	if err != nil {
		return p, err
	}
	closed := false
	defer func() {
		if !closed {
			s.pool.Close()
		}
	}()
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

	tickets := make([]uuid.UUID, c.threads)
	var createD, addD time.Duration
	var errN int64
	pg0, pg0Err := readPgDBStats(ctx, env.db)
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
			tickets[msg.thread] = tk.ID
			createD += time.Since(t)
		} else {
			_, err = s.svc.AddMessage(ctx, s.ws, env.md, tickets[msg.thread], nil, ops[i].add, false)
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
	closed = true
	s.finish(ctx, env.db, &p, pg0, pg0Err)

	p.Seconds = round3(elapsed.Seconds())
	p.CreateSeconds, p.AddMessageSeconds = round3(createD.Seconds()), round3(addD.Seconds())
	p.Errors = errN
	if errN > 0 {
		p.Problems = append(p.Problems, fmt.Sprintf("%d commands failed; the first: %s", errN, p.FirstError))
	}
	if err := mailCountEvents(ctx, env.db, s.ws, &p, c); err != nil {
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

// connectGmail runs the OAuth flow for the workspace's Gmail connection,
// as integrationstest.Connect does: Connect, consent at the fake, Callback.
func connectGmail(ctx context.Context, m *integrations.Manager, fake *oauthtest.Server, ws uuid.UUID) (helpdeskflow.Connection, error) {
	_, authURL, err := m.Connect(ctx, ws, mailsync.ProviderGmail, "")
	if err != nil {
		return helpdeskflow.Connection{}, fmt.Errorf("connect Gmail: %w", err)
	}
	code, err := fake.Authorize(authURL)
	if err != nil {
		return helpdeskflow.Connection{}, fmt.Errorf("connect Gmail: consent: %w", err)
	}
	u, err := url.Parse(authURL)
	if err != nil {
		return helpdeskflow.Connection{}, fmt.Errorf("connect Gmail: %w", err)
	}
	c, err := m.Callback(ctx, mailsync.ProviderGmail, u.Query().Get("state"), code, "")
	if err != nil {
		return helpdeskflow.Connection{}, fmt.Errorf("connect Gmail: callback: %w", err)
	}
	return c, nil
}

// mailFetchAndParse lists the mailbox as the sync does (the 7-day window,
// pages of 500) and fetches and parses every message, sequentially, with
// the last pipeline round's access token: the pipeline without Postgres.
func mailFetchAndParse(ctx context.Context, env *mailEnv) mailFetchParse {
	var f mailFetchParse
	if env.token == "" {
		f.Error = "no pipeline round ran, so there is no access token"
		return f
	}
	token := env.token
	client := gmail.New(env.gmail.URL(), nil, func(context.Context) (string, error) { return token, nil })
	query := "after:" + strconv.FormatInt(time.Now().Add(-7*24*time.Hour).Unix(), 10) + " -in:sent"
	start := time.Now()
	var ids []string
	pageToken := ""
	for {
		page, err := client.List(ctx, query, mailPageSize, pageToken)
		if err != nil {
			f.Error = fmt.Sprintf("list: %v", err)
			return f
		}
		ids = append(ids, page.MessageIDs...)
		if pageToken = page.NextPageToken; pageToken == "" {
			break
		}
	}
	slices.Reverse(ids)
	f.ListSeconds = round3(time.Since(start).Seconds())
	var getD, parseD time.Duration
	for _, id := range ids {
		t := time.Now()
		raw, err := client.Get(ctx, id)
		t1 := time.Now()
		getD += t1.Sub(t)
		if err != nil {
			f.Error = fmt.Sprintf("get %s: %v", id, err)
			break
		}
		if _, err := mail.Parse(raw.Raw); err != nil {
			f.Error = fmt.Sprintf("parse %s: %v", id, err)
			break
		}
		parseD += time.Since(t1)
		f.Messages++
		f.Bytes += int64(len(raw.Raw))
	}
	elapsed := time.Since(start)
	f.Seconds = round3(elapsed.Seconds())
	f.GetSeconds, f.ParseSeconds = round3(getD.Seconds()), round3(parseD.Seconds())
	if f.Seconds > 0 {
		f.PerSecond = round1(float64(f.Messages) / elapsed.Seconds())
	}
	return f
}

// timedImporter counts and times the sync's imports.
type timedImporter struct {
	mailsync.Importer
	mu      sync.Mutex
	total   time.Duration
	each    []time.Duration
	results map[string]int
}

func (t *timedImporter) ImportMail(ctx context.Context, workspaceID uuid.UUID, md helpdeskflow.Metadata, cmd tickets.ImportMail) (tickets.ImportResult, error) {
	start := time.Now()
	res, err := t.Importer.ImportMail(ctx, workspaceID, md, cmd)
	d := time.Since(start)
	kind := "message"
	switch {
	case err != nil:
		kind = "error"
	case res.Duplicate:
		kind = "duplicate"
	case res.Skipped:
		kind = "skipped"
	case res.Created:
		kind = "ticket"
	}
	t.mu.Lock()
	t.total += d
	t.each = append(t.each, d)
	t.results[kind]++
	t.mu.Unlock()
	return res, err
}

// timedTokens counts and times the sync's access token lookups (one per
// Gmail request).
type timedTokens struct {
	mailsync.Tokens
	mu    sync.Mutex
	total time.Duration
	calls int
}

func (t *timedTokens) AccessToken(ctx context.Context, workspaceID, id uuid.UUID) (string, error) {
	start := time.Now()
	s, err := t.Tokens.AccessToken(ctx, workspaceID, id)
	t.add(time.Since(start))
	return s, err
}

func (t *timedTokens) RefreshToken(ctx context.Context, workspaceID, id uuid.UUID) (string, error) {
	start := time.Now()
	s, err := t.Tokens.RefreshToken(ctx, workspaceID, id)
	t.add(time.Since(start))
	return s, err
}

func (t *timedTokens) add(d time.Duration) {
	t.mu.Lock()
	t.total += d
	t.calls++
	t.mu.Unlock()
}

// timedMailStore counts and times the sync's own store calls.
type timedMailStore struct {
	mailsync.Store
	mu    sync.Mutex
	total time.Duration
	calls int
}

func (s *timedMailStore) add(d time.Duration) {
	s.mu.Lock()
	s.total += d
	s.calls++
	s.mu.Unlock()
}

func (s *timedMailStore) ClaimMailboxes(ctx context.Context, providers []string, now, leaseUntil time.Time, limit int) ([]helpdeskflow.Connection, error) {
	t := time.Now()
	defer func() { s.add(time.Since(t)) }()
	return s.Store.ClaimMailboxes(ctx, providers, now, leaseUntil, limit)
}

func (s *timedMailStore) SaveSyncState(ctx context.Context, id uuid.UUID, lease time.Time, state []byte) (bool, error) {
	t := time.Now()
	defer func() { s.add(time.Since(t)) }()
	return s.Store.SaveSyncState(ctx, id, lease, state)
}

func (s *timedMailStore) FinishMailboxSync(ctx context.Context, id uuid.UUID, lease time.Time, o helpdeskflow.SyncOutcome) (int, bool, error) {
	t := time.Now()
	defer func() { s.add(time.Since(t)) }()
	return s.Store.FinishMailboxSync(ctx, id, lease, o)
}

func (s *timedMailStore) ImportedMail(ctx context.Context, connectionID uuid.UUID, ids []string) (map[string]bool, error) {
	t := time.Now()
	defer func() { s.add(time.Since(t)) }()
	return s.Store.ImportedMail(ctx, connectionID, ids)
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
