package commands

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/helpdeskflow/helpdeskflow"
)

// NameTooLarge turns the event store's size refusal of an append into the
// error an API client can act on: the event store refuses an event over
// helpdeskflow.MaxEventBytes, or one command's events over MaxAppendBytes
// in total, with EPayloadTooLarge before anything is sent (its cause a
// *helpdeskflow.TooLargeError), and this answers it EPayloadTooLarge naming
// the request field (a 413). Each area's transaction calls it on every
// Append; the refusal rolls the whole command back, so nothing is stored.
// Other results are returned as they are.
func NameTooLarge(version int64, err error) (int64, error) {
	var refused *helpdeskflow.TooLargeError
	if !errors.As(err, &refused) {
		return version, err
	}
	if refused.Total {
		return 0, tooLarge(refused.Event, fmt.Sprintf("makes the events of this request %s or more, over the limit of %s in total",
			kilobytes(refused.Size), kilobytes(helpdeskflow.MaxAppendBytes)))
	}
	return 0, tooLarge(refused.Event, fmt.Sprintf("makes the %s event %s, over the limit of %s",
		refused.Event.Type, kilobytes(refused.Size), kilobytes(helpdeskflow.MaxEventBytes)))
}

// tooLarge is the EPayloadTooLarge error for event e, naming its largest
// field.
func tooLarge(e helpdeskflow.NewEvent, problem string) error {
	field := largestField(e.Data)
	return &helpdeskflow.Error{Code: helpdeskflow.EPayloadTooLarge,
		Message: "the request would store more than an event may hold; shorten " + field,
		Details: []helpdeskflow.FieldProblem{{Field: field, Problem: problem}}}
}

// largestField names the request field behind the largest part of an
// event's data: the largest top-level key, and within an object (message,
// custom_fields, metadata) its largest key, skipping the "old" and "new" of
// a change. Event fields named after the request's are translated
// (message.body_text comes from message.body).
func largestField(data json.RawMessage) string {
	var path []string
	for len(path) < 2 {
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil || len(obj) == 0 {
			break
		}
		key, size := "", -1
		for k, v := range obj {
			if len(v) > size || len(v) == size && k < key {
				key, size = k, len(v)
			}
		}
		data = obj[key]
		if key == "old" || key == "new" {
			continue
		}
		path = append(path, strings.TrimSuffix(key, "_text"))
	}
	if len(path) == 0 {
		return "body"
	}
	return strings.Join(path, ".")
}

// kilobytes formats n bytes for a message: "5,742 KB".
func kilobytes(n int) string {
	return Thousands((n+999)/1000) + " KB"
}
