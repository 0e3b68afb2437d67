package slack

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	slackapi "github.com/slack-go/slack"

	"github.com/helpdeskflow/helpdeskflow"
)

// The notification kinds Format knows; a workspace picks a channel for each.
const (
	KindNewTicket  = "new_ticket"
	KindEscalation = "escalation" // priority raised to urgent, or a rule's notify_slack
	KindSLAWarning = "sla_warning"
	KindSLABreach  = "sla_breach"
)

// Limits Format applies to user-provided text before escaping it, well
// inside Slack's (3,000 characters per section text, 2,000 per field).
const (
	maxSubject     = 200
	maxShortField  = 254
	maxRuleMessage = 2000
)

// Event is what a notification is about. Every string field except Kind,
// Target and URL is user-provided text and is escaped by Format.
type Event struct {
	// Kind is one of the Kind* constants.
	Kind          string
	TicketID      string
	Subject       string
	Priority      string
	Status        string
	CustomerEmail string
	// Target is the SLA target (first_response or resolution) of
	// sla_warning and sla_breach.
	Target string
	// DueAt is the SLA target's deadline; the zero time leaves it out.
	DueAt time.Time
	// RuleMessage is the message of an automation rule's notify_slack
	// action, shown with an escalation.
	RuleMessage string
	// URL links the ticket; it is used only when it is an absolute http or
	// https URL.
	URL string
}

// Message is one Slack message: Text is the short plain line Slack shows in
// notifications and where blocks cannot be shown; Blocks the rich layout.
type Message struct {
	Text   string
	Blocks []Block
}

// Block is a section block: Text (mrkdwn) and/or Fields (mrkdwn, shown in
// two columns, at most 10). Whoever builds a Block escapes user text in it
// with Escape; Format does.
type Block struct {
	Text   string
	Fields []string
}

// Escape replaces Slack's control characters &, < and > in s with &amp;,
// &lt; and &gt;, so user text cannot form links or mentions such as
// <!channel>.
func Escape(s string) string {
	return escaper.Replace(s)
}

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Format renders e as a Message. The text reads like
// ":rotating_light: Escalated: Refund (urgent) — ada@example.com", with the
// rule's message on a second line for a rule's escalation and the deadline
// (in UTC) for SLA kinds; the blocks add a link to the ticket, the status
// and the ticket id, and show deadlines in the reader's time zone. User
// text is escaped, put on one line (except RuleMessage) and shortened when
// very long. An unknown Kind gets a generic ":bell: Ticket update" message.
func Format(e Event) Message {
	subject := oneLine(e.Subject, maxSubject)
	if subject == "" {
		subject = "(no subject)"
	}
	priority := oneLine(e.Priority, maxShortField)
	customer := oneLine(e.CustomerEmail, maxShortField)
	rule := strings.TrimSpace(truncate(e.RuleMessage, maxRuleMessage))

	emoji, label := ":bell:", "Ticket update"
	var dueText, dueBlock string
	switch e.Kind {
	case KindNewTicket:
		emoji, label = ":ticket:", "New ticket"
	case KindEscalation:
		emoji, label = ":rotating_light:", "Escalated"
	case KindSLAWarning:
		emoji, label = ":hourglass_flowing_sand:", "SLA warning"
		dueText, dueBlock = due(e, "due")
	case KindSLABreach:
		emoji, label = ":red_circle:", "SLA breached"
		dueText, dueBlock = due(e, "was due")
	}

	// The one-line summary: "<emoji> <label>[: <target due …>]: <subject> (<priority>) — <customer>".
	var text strings.Builder
	fmt.Fprintf(&text, "%s %s", emoji, label)
	if dueText != "" {
		fmt.Fprintf(&text, ": %s", dueText)
	}
	fmt.Fprintf(&text, ": %s", Escape(subject))
	if priority != "" {
		fmt.Fprintf(&text, " (%s)", Escape(priority))
	}
	if customer != "" {
		fmt.Fprintf(&text, " — %s", Escape(customer))
	}
	if rule != "" {
		fmt.Fprintf(&text, "\n%s", Escape(rule))
	}

	headline := fmt.Sprintf("%s *%s*", emoji, label)
	if dueBlock != "" {
		headline += ": " + dueBlock
	}
	title := "*" + Escape(subject) + "*"
	if link, ok := linkURL(e.URL); ok {
		title = "*<" + link + "|" + Escape(subject) + ">*"
	}
	blocks := []Block{{Text: headline + "\n" + title}}
	if rule != "" {
		blocks = append(blocks, Block{Text: quote(Escape(rule))})
	}
	var fields []string
	for _, f := range []struct{ name, value string }{
		{"Priority", priority},
		{"Status", oneLine(e.Status, maxShortField)},
		{"Customer", customer},
		{"Ticket", oneLine(e.TicketID, maxShortField)},
	} {
		if f.value != "" {
			fields = append(fields, "*"+f.name+"*\n"+Escape(f.value))
		}
	}
	if len(fields) > 0 {
		blocks = append(blocks, Block{Fields: fields})
	}
	return Message{Text: text.String(), Blocks: blocks}
}

// due describes an SLA deadline as "first response due 2024-05-01 14:05 UTC"
// for the text, and with Slack's date formatting (the reader's time zone,
// the UTC text as fallback) for the blocks.
func due(e Event, verb string) (text, block string) {
	var target string
	switch e.Target {
	case helpdeskflow.SLAFirstResponse:
		target = "first response"
	case helpdeskflow.SLAResolution:
		target = "resolution"
	case "":
		target = "target"
	default:
		target = Escape(oneLine(e.Target, maxShortField))
	}
	if e.DueAt.IsZero() {
		return target + " " + verb, target + " " + verb
	}
	at := e.DueAt.UTC().Format("2006-01-02 15:04 UTC")
	text = fmt.Sprintf("%s %s %s", target, verb, at)
	block = fmt.Sprintf("%s %s <!date^%d^{date_short_pretty} at {time}|%s>", target, verb, e.DueAt.Unix(), at)
	return text, block
}

// linkURL returns u escaped for Slack's <url|label> syntax, and false when
// u is not an absolute http(s) URL.
func linkURL(u string) (string, bool) {
	p, err := url.Parse(strings.TrimSpace(u))
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return "", false
	}
	// A '|' would end the URL part of the link early.
	return strings.ReplaceAll(Escape(p.String()), "|", "%7C"), true
}

// oneLine collapses runs of white space (newlines included) to single
// spaces and shortens s to at most max runes.
func oneLine(s string, max int) string {
	return truncate(strings.Join(strings.Fields(s), " "), max)
}

// truncate shortens s to at most max runes, the last being an ellipsis.
func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// quote renders s (already escaped) as a mrkdwn block quote, line by
// line; the '>' that starts a quote is markup, so it is not escaped.
func quote(s string) string {
	return ">" + strings.ReplaceAll(s, "\n", "\n>")
}

// slackBlocks converts blocks to slack-go section blocks.
func slackBlocks(blocks []Block) []slackapi.Block {
	out := make([]slackapi.Block, 0, len(blocks))
	for _, b := range blocks {
		var text *slackapi.TextBlockObject
		if b.Text != "" {
			text = slackapi.NewTextBlockObject(slackapi.MarkdownType, b.Text, false, false)
		}
		var fields []*slackapi.TextBlockObject
		for _, f := range b.Fields {
			fields = append(fields, slackapi.NewTextBlockObject(slackapi.MarkdownType, f, false, false))
		}
		out = append(out, slackapi.NewSectionBlock(text, fields, nil))
	}
	return out
}

// KindIntegration is a connected integration that stopped working (its
// grant expired or its login is refused), posted to the escalation
// channel.
const KindIntegration = "integration"

// IntegrationProblem is what an integration notification is about. Every
// field is user- or provider-provided text, escaped by
// FormatIntegrationProblem.
type IntegrationProblem struct {
	// Provider is the integration's provider (google, outlook, shopify,
	// stripe); Account the connected mailbox, shop or account.
	Provider, Account string
	// Status is the integration's new status (token_expired,
	// needs_revalidation); Problem says why, in the provider's words or
	// a class.
	Status, Problem string
}

// providerNames are the providers as people know them.
var providerNames = map[string]string{"google": "Gmail", "outlook": "Outlook", "shopify": "Shopify", "stripe": "Stripe"}

// FormatIntegrationProblem renders p as a Message reading like
// ":warning: Gmail integration support@acme.com stopped: token_expired —
// reconnect it", with the problem in the blocks.
func FormatIntegrationProblem(p IntegrationProblem) Message {
	name := providerNames[p.Provider]
	if name == "" {
		name = oneLine(p.Provider, maxShortField)
	}
	account := oneLine(p.Account, maxShortField)
	status := oneLine(p.Status, maxShortField)
	text := fmt.Sprintf(":warning: %s integration %s stopped: %s — reconnect it under Integrations", Escape(name), Escape(account), Escape(status))
	blocks := []Block{{Text: fmt.Sprintf(":warning: *%s integration stopped*\nSyncs are paused until someone reconnects it.", Escape(name))}}
	var fields []string
	for _, f := range []struct{ name, value string }{{"Account", account}, {"Status", status}, {"Problem", oneLine(p.Problem, maxShortField)}} {
		if f.value != "" {
			fields = append(fields, "*"+f.name+"*\n"+Escape(f.value))
		}
	}
	if len(fields) > 0 {
		blocks = append(blocks, Block{Fields: fields})
	}
	return Message{Text: text, Blocks: blocks}
}
