package tickets

import (
	"fmt"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands"
)

// Totals per customer, checked on the customer as a request (or a merge)
// would leave it, after merging its changes into what the customer has.
// They are far above real use; what they are for is bounding the
// customer's state and so every customer event: customer.updated repeats
// the old and the new tags and linked profiles whole, and the old and new
// value of each changed custom field and metadata key, so the largest one
// stays well under helpdeskflow.MaxEventBytes (about 2 × 352 KiB plus
// names and keys; a test builds it). Bytes are those of the JSON encoding
// (as events store it) of the whole field: all tags, all custom fields,
// all metadata, all linked profiles.
const (
	MaxCustomerTags                = 1000
	MaxCustomerTagsBytes           = 32 << 10
	MaxCustomerCustomFields        = 500
	MaxCustomerCustomFieldsBytes   = 64 << 10
	MaxCustomerMetadataKeys        = 1000
	MaxCustomerMetadataBytes       = 128 << 10
	MaxCustomerLinkedProfiles      = 100
	MaxCustomerLinkedProfilesBytes = 128 << 10
)

// MaxTicketMessages is the most messages (public replies and internal
// notes, the first message included) one ticket may have, like Zendesk's
// limit of comments per ticket. A longer conversation goes on in a
// follow-up ticket. (A ticket's tags and custom fields are bounded by
// MaxTags and MaxCustomFields in total, not only per request.)
const MaxTicketMessages = 5000

// Who makes a change, as ELimitExceeded details name it.
const (
	byRequest = "the request"
	byMerge   = "the merge"
)

// customerTotal is one total of a customer: a count and the size of the
// field's JSON encoding.
type customerTotal struct {
	field    string // as the request names it
	noun     string // what is counted, plural
	name     string // the whole field, in words
	maxCount int
	maxBytes int
	of       func(helpdeskflow.Customer) (count int, field any)
}

var customerTotals = []customerTotal{
	{"tags", "tags", "tags", MaxCustomerTags, MaxCustomerTagsBytes,
		func(c helpdeskflow.Customer) (int, any) { return len(c.Tags), c.Tags }},
	{"custom_fields", "custom fields", "custom fields", MaxCustomerCustomFields, MaxCustomerCustomFieldsBytes,
		func(c helpdeskflow.Customer) (int, any) { return len(c.CustomFields), c.CustomFields }},
	{"metadata", "metadata keys", "metadata", MaxCustomerMetadataKeys, MaxCustomerMetadataBytes,
		func(c helpdeskflow.Customer) (int, any) { return len(c.Metadata), c.Metadata }},
	{"linked_profiles", "linked profiles", "linked profiles", MaxCustomerLinkedProfiles, MaxCustomerLinkedProfilesBytes,
		func(c helpdeskflow.Customer) (int, any) { return len(c.LinkedProfiles), c.LinkedProfiles }},
}

// checkCustomerTotals returns ELimitExceeded, with one detail per total,
// when after passes a total that the change (made by by: byRequest or
// byMerge) makes larger than it was on before. A customer already over a
// total (stored before the totals existed) may keep it or shrink it.
func checkCustomerTotals(before, after helpdeskflow.Customer, by string) error {
	var p commands.Problems
	for _, total := range customerTotals {
		had, field0 := total.of(before)
		has, field1 := total.of(after)
		if has > total.maxCount && has > had {
			p.Add(total.field, "a customer may have at most %s %s; this one has %s and %s adds %s",
				commands.Thousands(total.maxCount), total.noun, commands.Thousands(had), by, commands.Thousands(has-had))
			continue
		}
		size0, size1 := jsonSize(had, field0), jsonSize(has, field1)
		if size1 > total.maxBytes && size1 > size0 {
			p.Add(total.field, "a customer's %s may take at most %s bytes as JSON; this one has %s bytes and %s adds %s",
				total.name, commands.Thousands(total.maxBytes), commands.Thousands(size0), by, commands.Thousands(size1-size0))
		}
	}
	if len(p) == 0 {
		return nil
	}
	return &helpdeskflow.Error{Code: helpdeskflow.ELimitExceeded,
		Message: by + " would take the customer past a total it may have; see details", Details: p}
}

// jsonSize is the length of the JSON encoding of field, of count items,
// as events store it; 0 for none.
func jsonSize(count int, field any) int {
	if count == 0 {
		return 0
	}
	b, _ := helpdeskflow.MarshalJSON(field)
	return len(b)
}

// ticketTotalExceeded returns ELimitExceeded for a ticket field that would
// pass its total: it has had and the request adds added.
func ticketTotalExceeded(field, noun string, limit, had, added int, advice string) error {
	return &helpdeskflow.Error{Code: helpdeskflow.ELimitExceeded,
		Message: "the request would take the ticket past a total it may have; see details",
		Details: []helpdeskflow.FieldProblem{{Field: field, Problem: fmt.Sprintf("a ticket may have at most %s %s; this one has %s and the request adds %s%s",
			commands.Thousands(limit), noun, commands.Thousands(had), commands.Thousands(added), advice)}}}
}
