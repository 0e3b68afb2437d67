package slack_test

import (
	"strings"
	"testing"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/slack"
)

func TestFormat(t *testing.T) {
	due := time.Date(2024, 5, 1, 16, 5, 0, 0, time.FixedZone("CEST", 2*3600)) // 14:05 UTC
	base := slack.Event{
		TicketID: "tk_1", Subject: "Refund for order 1042", Priority: "urgent", Status: "open",
		CustomerEmail: "ada@example.com", URL: "https://desk.example.com/tickets/tk_1",
	}
	with := func(f func(e *slack.Event)) slack.Event { e := base; f(&e); return e }
	tests := []struct {
		name       string
		event      slack.Event
		text       string
		headline   string // the first block's text starts with it
		wantBlocks int
	}{
		{
			"NewTicket",
			with(func(e *slack.Event) { e.Kind = slack.KindNewTicket; e.Priority = "high"; e.Status = "new" }),
			":ticket: New ticket: Refund for order 1042 (high) — ada@example.com",
			":ticket: *New ticket*\n*<https://desk.example.com/tickets/tk_1|Refund for order 1042>*",
			2,
		},
		{
			"Escalation",
			with(func(e *slack.Event) { e.Kind = slack.KindEscalation }),
			":rotating_light: Escalated: Refund for order 1042 (urgent) — ada@example.com",
			":rotating_light: *Escalated*\n*<https://desk.example.com/tickets/tk_1|Refund for order 1042>*",
			2,
		},
		{
			"EscalationByRule",
			with(func(e *slack.Event) { e.Kind = slack.KindEscalation; e.RuleMessage = "VIP customer\nplease call" }),
			":rotating_light: Escalated: Refund for order 1042 (urgent) — ada@example.com\nVIP customer\nplease call",
			":rotating_light: *Escalated*\n",
			3,
		},
		{
			"SLAWarning",
			with(func(e *slack.Event) { e.Kind = slack.KindSLAWarning; e.Target = "first_response"; e.DueAt = due }),
			":hourglass_flowing_sand: SLA warning: first response due 2024-05-01 14:05 UTC: Refund for order 1042 (urgent) — ada@example.com",
			":hourglass_flowing_sand: *SLA warning*: first response due <!date^1714572300^{date_short_pretty} at {time}|2024-05-01 14:05 UTC>\n",
			2,
		},
		{
			"SLABreach",
			with(func(e *slack.Event) { e.Kind = slack.KindSLABreach; e.Target = "resolution"; e.DueAt = due }),
			":red_circle: SLA breached: resolution was due 2024-05-01 14:05 UTC: Refund for order 1042 (urgent) — ada@example.com",
			":red_circle: *SLA breached*: resolution was due <!date^1714572300^{date_short_pretty} at {time}|2024-05-01 14:05 UTC>\n",
			2,
		},
		{
			"SLABreachNoDue",
			with(func(e *slack.Event) { e.Kind = slack.KindSLABreach; e.Target = "resolution" }),
			":red_circle: SLA breached: resolution was due: Refund for order 1042 (urgent) — ada@example.com",
			":red_circle: *SLA breached*: resolution was due\n",
			2,
		},
		{
			"UnknownKind",
			with(func(e *slack.Event) { e.Kind = "something_else" }),
			":bell: Ticket update: Refund for order 1042 (urgent) — ada@example.com",
			":bell: *Ticket update*\n",
			2,
		},
		{
			"Minimal",
			slack.Event{Kind: slack.KindNewTicket},
			":ticket: New ticket: (no subject)",
			":ticket: *New ticket*\n*(no subject)*",
			1,
		},
		{
			"BadURL",
			with(func(e *slack.Event) { e.Kind = slack.KindNewTicket; e.URL = "javascript:alert(1)" }),
			":ticket: New ticket: Refund for order 1042 (urgent) — ada@example.com",
			":ticket: *New ticket*\n*Refund for order 1042*",
			2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := slack.Format(tt.event)
			if got := m.Text; got != tt.text {
				t.Errorf("Text = %q, want %q", got, tt.text)
			}
			if got := len(m.Blocks); got != tt.wantBlocks {
				t.Fatalf("len(Blocks) = %d, want %d: %+v", got, tt.wantBlocks, m.Blocks)
			}
			if got := m.Blocks[0].Text; !strings.HasPrefix(got, tt.headline) {
				t.Errorf("Blocks[0].Text = %q, want prefix %q", got, tt.headline)
			}
		})
	}
}

func TestFormat_Fields(t *testing.T) {
	m := slack.Format(slack.Event{
		Kind: slack.KindEscalation, TicketID: "tk_1", Subject: "S", Priority: "urgent",
		Status: "open", CustomerEmail: "ada@example.com", RuleMessage: "line 1\nline 2",
	})
	if got, want := m.Blocks[1].Text, ">line 1\n>line 2"; got != want {
		t.Errorf("rule block = %q, want %q", got, want)
	}
	want := []string{"*Priority*\nurgent", "*Status*\nopen", "*Customer*\nada@example.com", "*Ticket*\ntk_1"}
	if got := m.Blocks[2].Fields; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("fields = %q, want %q", got, want)
	}
}

func TestFormat_Escaping(t *testing.T) {
	e := slack.Event{
		Kind:          slack.KindEscalation,
		TicketID:      "tk_<1>",
		Subject:       "<!channel> Tom & Jerry >\n<https://evil.example|click>",
		Priority:      "<urgent>",
		Status:        "open&",
		CustomerEmail: "a<b>@example.com",
		RuleMessage:   "<@U123> call & <!here>",
		URL:           "https://desk.example.com/t?a=1&b=<2>|x",
	}
	m := slack.Format(e)
	if got, want := m.Text, ":rotating_light: Escalated: &lt;!channel&gt; Tom &amp; Jerry &gt; &lt;https://evil.example|click&gt; (&lt;urgent&gt;) — a&lt;b&gt;@example.com\n&lt;@U123&gt; call &amp; &lt;!here&gt;"; got != want {
		t.Errorf("Text = %q\nwant   %q", got, want)
	}
	all := m.Text
	for _, b := range m.Blocks {
		all += "\n" + b.Text + "\n" + strings.Join(b.Fields, "\n")
	}
	for _, raw := range []string{"<!channel>", "<!here>", "<@U123>", "<https://evil", "Tom & Jerry", "<urgent>", "open&\n", "tk_<1>", "a<b>"} {
		if strings.Contains(all, raw) {
			t.Errorf("message contains unescaped %q:\n%s", raw, all)
		}
	}
	// The only link is the ticket URL, with its control characters escaped
	// and no '|' that would cut it short.
	if got, want := m.Blocks[0].Text, "*<https://desk.example.com/t?a=1&amp;b=&lt;2&gt;%7Cx|&lt;!channel&gt; Tom &amp; Jerry &gt; &lt;https://evil.example|click&gt;>*"; !strings.HasSuffix(got, want) {
		t.Errorf("Blocks[0].Text = %q, want suffix %q", got, want)
	}
	if got, want := strings.Count(all, "<"), 1; got != want {
		t.Errorf("message has %d '<', want %d (the ticket link):\n%s", got, want, all)
	}
}

func TestFormat_Truncates(t *testing.T) {
	m := slack.Format(slack.Event{Kind: slack.KindNewTicket, Subject: strings.Repeat("é", 1000), RuleMessage: strings.Repeat("x", 5000)})
	if got := len([]rune(m.Text)); got > 2400 {
		t.Errorf("len(Text) = %d runes, want it shortened", got)
	}
	if !strings.Contains(m.Text, "é…") {
		t.Errorf("Text %q does not end its subject with an ellipsis", m.Text[:60])
	}
	for i, b := range m.Blocks {
		if n := len([]rune(b.Text)); n > 3000 {
			t.Errorf("Blocks[%d].Text has %d runes, over Slack's 3000", i, n)
		}
	}
}

func TestEscape(t *testing.T) {
	if got, want := slack.Escape("a & <b> &amp;"), "a &amp; &lt;b&gt; &amp;amp;"; got != want {
		t.Errorf("Escape = %q, want %q", got, want)
	}
}
