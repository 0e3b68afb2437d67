package main

import (
	"bytes"
	"cmp"
	"fmt"
	"html"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

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

// threadGmailID is the Gmail thread id of message i's thread.
func (c *mailCorpus) threadGmailID(i int) string { return c.gmailThreads[c.msgs[i].thread] }

func (c *mailCorpus) setThreadGmailID(thread int, id string) {
	if c.gmailThreads == nil {
		c.gmailThreads = make([]string, c.threads)
	}
	c.gmailThreads[thread] = id
}
