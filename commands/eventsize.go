package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/helpdeskflow/helpdeskflow"
)

// sizeCheckedStore gives every command transaction an Append that checks,
// before the event store sees them, that no event is over
// helpdeskflow.MaxEventBytes and that one command's events stay under
// MaxAppendBytes in total. A refusal is EPayloadTooLarge naming the request
// field that makes the event large, and rolls the whole command back, so
// nothing is stored.
type sizeCheckedStore struct{ Store }

func (s sizeCheckedStore) Transact(ctx context.Context, fn func(tx Tx) error) error {
	return s.Store.Transact(ctx, func(tx Tx) error { return fn(&sizeCheckedTx{Tx: tx}) })
}

type sizeCheckedTx struct {
	Tx
	total int // EventSize summed over this transaction's appends
}

func (t *sizeCheckedTx) Append(ctx context.Context, ref helpdeskflow.StreamRef, expectedVersion int64, md helpdeskflow.Metadata, events []helpdeskflow.NewEvent) (int64, error) {
	if len(events) > 0 {
		mdJSON, err := helpdeskflow.MarshalJSON(md)
		if err != nil {
			return 0, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "encode metadata", Err: err}
		}
		total := t.total
		for _, e := range events {
			size := helpdeskflow.EventSize(e.Type, ref.Type, e.Data, mdJSON)
			if size > helpdeskflow.MaxEventBytes {
				return 0, tooLarge(e, fmt.Sprintf("makes the %s event %s, over the limit of %s", e.Type, kilobytes(size), kilobytes(helpdeskflow.MaxEventBytes)))
			}
			if total += size; total > helpdeskflow.MaxAppendBytes {
				return 0, tooLarge(e, fmt.Sprintf("makes the events of this request %s or more, over the limit of %s in total", kilobytes(total), kilobytes(helpdeskflow.MaxAppendBytes)))
			}
		}
		t.total = total
	}
	return t.Tx.Append(ctx, ref, expectedVersion, md, events)
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
	return thousands((n+999)/1000) + " KB"
}
