package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/helpdeskflow/helpdeskflow"
)

// fieldNamingStore gives every command transaction an Append whose
// size refusal names the request field: the event store refuses an event
// over helpdeskflow.MaxEventBytes, or one command's events over
// MaxAppendBytes in total, with EPayloadTooLarge before anything is sent
// (its cause a *helpdeskflow.TooLargeError), and this turns that into the
// 413 an API client can act on. The refusal rolls the whole command back,
// so nothing is stored.
type fieldNamingStore struct{ Store }

func (s fieldNamingStore) Transact(ctx context.Context, fn func(tx Tx) error) error {
	return s.Store.Transact(ctx, func(tx Tx) error { return fn(fieldNamingTx{tx}) })
}

type fieldNamingTx struct{ Tx }

func (t fieldNamingTx) Append(ctx context.Context, ref helpdeskflow.StreamRef, expectedVersion int64, md helpdeskflow.Metadata, events []helpdeskflow.NewEvent) (int64, error) {
	version, err := t.Tx.Append(ctx, ref, expectedVersion, md, events)
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
