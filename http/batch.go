package http

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/julienschmidt/httprouter"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
)

// MaxBatchBodyBytes is the largest body of the batch routes
// (POST /v1/batch/tickets, POST /v1/batch/customers); each item keeps the
// limits of its single route.
const MaxBatchBodyBytes = 10 << 20

// A batch request is {"items": [<the body of the single route>, …]} with 1
// to tickets.MaxBatchItems items. Its answer is 200 with one result per
// item, in item order: {"data": [{"index": 0, "status": 201, "ticket": …},
// {"index": 1, "status": 400, "error": {…}}]}, each what the item alone
// would have been answered (status and body) by the single route. Only a
// body that is not that shape is refused whole (400 naming items), as is a
// batch over the rate limit (429, counting every item) or a failure of
// the whole transaction (5xx, 409 version_conflict), after which nothing
// is stored.

// batchResultJSON is one item's result in a batch answer.
type batchResultJSON struct {
	Index    int           `json:"index"`
	Status   int           `json:"status"`
	Ticket   *ticketJSON   `json:"ticket,omitempty"`
	Customer *customerJSON `json:"customer,omitempty"`
	Error    *errorDetail  `json:"error,omitempty"`
}

// heldKey is the Idempotency-Key a batch request holds, given to its
// handler (see runHandler): the handler's transaction keeps the response
// with it and then sets kept, so the middleware does not keep it again.
type heldKey struct {
	key  helpdeskflow.HeldIdempotencyKey
	kept bool
}

// heldKeyOf returns the key r holds for its handler to keep its response
// with, or nil.
func heldKeyOf(r *http.Request) *heldKey {
	h, _ := r.Context().Value(heldKeyKey).(*heldKey)
	return h
}

func (h *heldKey) held() *helpdeskflow.HeldIdempotencyKey {
	if h == nil {
		return nil
	}
	return &h.key
}

// handleTicketBatch is POST /v1/batch/tickets: up to 100 ticket creates,
// each answered as POST /v1/tickets would answer it alone, the created
// ones committed together (with the Idempotency-Key's response).
func (s *Server) handleTicketBatch(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	raws, err := decodeBatch(r)
	if err != nil {
		return err
	}
	items := make([]tickets.Item[tickets.CreateTicket], len(raws))
	for i, raw := range raws {
		items[i].Err = decodeBody(raw, &items[i].Cmd)
	}
	held := heldKeyOf(r)
	resp, err := s.cfg.Tickets.CreateTickets(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), items, held.held(),
		func(results []tickets.TicketResult) (helpdeskflow.IdempotentResponse, error) {
			out := make([]batchResultJSON, len(results))
			for i, res := range results {
				out[i] = s.itemResult(r, i, http.StatusCreated, res.Err)
				if res.Err == nil {
					t := toTicketJSON(res.Ticket, s.cfg.Now())
					out[i].Ticket = &t
				}
			}
			return jsonResponse(http.StatusOK, map[string]any{"data": out})
		})
	return writeKept(w, held, resp, err)
}

// handleCustomerBatch is POST /v1/batch/customers: up to 100 customer
// upserts, each answered as POST /v1/customers would answer it alone (201
// created, 200 existing), committed together.
func (s *Server) handleCustomerBatch(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	raws, err := decodeBatch(r)
	if err != nil {
		return err
	}
	items := make([]tickets.Item[tickets.UpsertCustomer], len(raws))
	for i, raw := range raws {
		items[i].Err = decodeBody(raw, &items[i].Cmd)
	}
	held := heldKeyOf(r)
	resp, err := s.cfg.Customers.UpsertCustomers(r.Context(), principalOf(r.Context()).WorkspaceID, metadata(r), items, held.held(),
		func(results []tickets.CustomerResult) (helpdeskflow.IdempotentResponse, error) {
			out := make([]batchResultJSON, len(results))
			for i, res := range results {
				status := http.StatusOK
				if res.Created {
					status = http.StatusCreated
				}
				out[i] = s.itemResult(r, i, status, res.Err)
				if res.Err == nil {
					c := toCustomerWithTicketsJSON(res.Customer)
					out[i].Customer = &c
				}
			}
			return jsonResponse(http.StatusOK, map[string]any{"data": out})
		})
	return writeKept(w, held, resp, err)
}

// itemResult is item i's result without its entity: status when err is
// nil, else err's status and error object. An automation conflict is
// logged as the single routes log it.
func (s *Server) itemResult(r *http.Request, i, status int, err error) batchResultJSON {
	if err == nil {
		return batchResultJSON{Index: i, Status: status}
	}
	if helpdeskflow.ErrorCode(err) == helpdeskflow.EAutomationConflict {
		logRequest(r.Context(), s.cfg.Logger, slog.LevelWarn, "automation conflict", "method", r.Method, "path", r.URL.Path, "item", i,
			"rule_ids", ruleIDs(err), helpdeskflow.LogError, helpdeskflow.ErrorMessage(err))
	}
	e := toErrorDetail(r, err)
	return batchResultJSON{Index: i, Status: StatusOf(err), Error: &e}
}

// writeKept answers with a response its command's transaction kept (a
// batch's, a ticket create's) with the held Idempotency-Key (if any).
func writeKept(w http.ResponseWriter, held *heldKey, resp helpdeskflow.IdempotentResponse, err error) error {
	if err != nil {
		return err
	}
	if held != nil {
		held.kept = true
	}
	for name, value := range resp.Header {
		w.Header().Set(name, value)
	}
	w.WriteHeader(resp.Status)
	w.Write(resp.Body) //nolint:errcheck // the client went away; nothing to do
	return nil
}

// jsonResponse is the response writeJSON would write, as bytes to keep.
func jsonResponse(status int, body any) (helpdeskflow.IdempotentResponse, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return helpdeskflow.IdempotentResponse{}, &helpdeskflow.Error{Code: helpdeskflow.EInternal, Message: "encode the answer", Err: err}
	}
	return helpdeskflow.IdempotentResponse{Status: status, Header: map[string]string{"Content-Type": "application/json; charset=utf-8"},
		Body: buf.Bytes()}, nil
}

// decodeBatch reads a batch body, up to MaxBatchBodyBytes, and returns its
// items undecoded. A body that is not {"items": [1 to MaxBatchItems
// values]} is refused whole: malformed JSON or not an object
// EInvalidJSON, an api_key field EKeyInWrongPlace, otherwise EValidation
// naming every problem (items, unknown fields).
func decodeBatch(r *http.Request) ([]json.RawMessage, error) {
	body, err := readBody(r, MaxBatchBodyBytes)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, helpdeskflow.Errorf(helpdeskflow.EInvalidJSON, "the request body is empty; send a JSON object")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, jsonError(body, err)
	}
	if _, ok := top["api_key"]; ok {
		return nil, helpdeskflow.Errorf(helpdeskflow.EKeyInWrongPlace, "API keys are accepted only in the Authorization header (Bearer), never in the body")
	}
	var problems []helpdeskflow.FieldProblem
	var raw json.RawMessage
	names := make([]string, 0, len(top))
	for name := range top {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		// Names match as encoding/json matches them: exactly, or else
		// ignoring case.
		if name == "items" || (raw == nil && strings.EqualFold(name, "items") && top["items"] == nil) {
			raw = top[name]
			continue
		}
		problems = append(problems, helpdeskflow.FieldProblem{Field: name, Problem: "unknown field"})
	}
	var items []json.RawMessage
	switch {
	case raw == nil || string(raw) == "null":
		problems = append(problems, helpdeskflow.FieldProblem{Field: "items",
			Problem: fmt.Sprintf("required: a list of 1 to %d items", tickets.MaxBatchItems)})
	case json.Unmarshal(raw, &items) != nil:
		problems = append(problems, helpdeskflow.FieldProblem{Field: "items", Problem: "must be an array, got " + jsonKind(raw)})
	case len(items) == 0 || len(items) > tickets.MaxBatchItems:
		problems = append(problems, helpdeskflow.FieldProblem{Field: "items",
			Problem: fmt.Sprintf("must have 1 to %d items, got %d", tickets.MaxBatchItems, len(items))})
	}
	if len(problems) > 0 {
		return nil, &helpdeskflow.Error{Code: helpdeskflow.EValidation, Message: "the request has invalid fields; see details", Details: problems}
	}
	return items, nil
}

// batchCost reads a batch request's body (up to MaxBatchBodyBytes, else
// EPayloadTooLarge), puts it back for the handler, and returns how many
// requests it counts as for the rate limit: its items, or 1 for a body
// the handler will refuse whole.
func batchCost(r *http.Request) (int, error) {
	body, err := readBody(r, MaxBatchBodyBytes)
	if err != nil {
		return 0, err
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	var envelope struct {
		Items []json.RawMessage `json:"items"`
	}
	if json.Unmarshal(body, &envelope) != nil || len(envelope.Items) == 0 || len(envelope.Items) > tickets.MaxBatchItems {
		return 1, nil
	}
	return len(envelope.Items), nil
}
