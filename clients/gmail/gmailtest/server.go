// Package gmailtest is a fake of the Gmail REST API for tests: an httptest
// server on 127.0.0.1 that answers users.getProfile, users.history.list,
// users.messages.list, users.messages.get (format=raw and minimal) and
// users.messages.send in Gmail's JSON shapes (int64 fields such as
// historyId as strings, raw as base64url, errors as
// {"error":{"code","message","errors":[{"reason"}],"status"}}), checks the
// bearer token, can be scripted to fail, rate limit and expire its history,
// and records what it was sent. It imports no Gmail library, so it checks
// what a client really sends.
//
// It holds tens of thousands of messages: history.list finds its start by
// binary search and pages by index, messages.get is a map lookup, and
// messages.list scans only as far as a page needs.
package gmailtest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultAddress is the mailbox's address until SetAddress changes it.
const DefaultAddress = "support@acme.example"

// firstHistoryID is the mailbox's history id before any change; each
// change moves it by historyStep, so clients cannot assume consecutive ids.
const (
	firstHistoryID = 1000
	historyStep    = 3
	firstMessageID = 0x18c0a1b2c3d40000
	maxBody        = 40 << 20
)

// SentMessage is a message the fake accepted through messages.send.
type SentMessage struct {
	ID string
	// ThreadID is the thread the message went into: the one the request
	// named, or the one its References found, or a new one.
	ThreadID string
	// RequestThreadID is the threadId of the request ("" when absent).
	RequestThreadID string
	Raw             []byte
}

type message struct {
	id, threadID string
	historyID    uint64
	labels       []string
	raw          []byte
	internalDate time.Time
}

type historyRecord struct {
	id  uint64
	msg *message
}

// answer is a scripted failure.
type answer struct {
	status     int
	reason     string
	retryAfter time.Duration
}

// Server is the fake Gmail API. Its methods are safe for concurrent use
// with each other and with the requests it serves.
type Server struct {
	srv *httptest.Server

	mu            sync.Mutex
	token         string
	tokenValid    func(string) bool
	address       string
	latency       time.Duration
	historyID     uint64
	expiredBefore uint64
	nextID        uint64
	msgs          map[string]*message
	order         []*message          // delivery order, oldest first
	history       []historyRecord     // increasing ids
	threadOf      map[string]string   // RFC 5322 Message-Id → thread id
	threads       map[string]struct{} // thread ids
	script        []answer
	sent          []SentMessage
	calls         map[string]int
}

// NewServer starts a fake with an empty mailbox at DefaultAddress. Until
// SetToken is called it accepts any non-empty bearer token. Close it when
// done.
func NewServer() *Server {
	s := &Server{
		address:   DefaultAddress,
		historyID: firstHistoryID,
		nextID:    firstMessageID,
		msgs:      map[string]*message{},
		threadOf:  map[string]string{},
		threads:   map[string]struct{}{},
		calls:     map[string]int{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL returns the base URL to give gmail.New (without /gmail/v1).
func (s *Server) URL() string { return s.srv.URL }

// Close shuts the server down, waiting for requests in flight.
func (s *Server) Close() { s.srv.Close() }

// SetToken makes token the only one accepted; others get 401.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// SetTokenCheck makes valid decide which bearer tokens are accepted
// (others get 401), such as an OAuth fake's ValidAccessToken.
func (s *Server) SetTokenCheck(valid func(token string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenValid = valid
}

// SetAddress sets the address getProfile reports.
func (s *Server) SetAddress(email string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.address = email
}

// SetLatency makes every request wait d before it is answered, to imitate
// the network in benchmarks.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Deliver adds a received message (labels INBOX and UNREAD) dated now and
// returns its id. threadID "" puts it in the thread of a message its
// In-Reply-To or References name, as Gmail does, or in a new thread whose
// id is the message's. Each delivery moves the history id and adds a
// messageAdded history record.
func (s *Server) Deliver(raw []byte, threadID string) (id string) {
	return s.DeliverAt(raw, threadID, time.Now())
}

// DeliverAt is Deliver with the given receipt time (internalDate), for
// tests of newer_than: queries.
func (s *Server) DeliverAt(raw []byte, threadID string, at time.Time) (id string) {
	own, refs := threadHeaders(raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.add(raw, threadID, own, refs, []string{"INBOX", "UNREAD"}, at)
	return m.id
}

// add stores a message and its history record. The caller holds s.mu.
func (s *Server) add(raw []byte, threadID, ownID string, refs []string, labels []string, at time.Time) *message {
	s.nextID++
	id := strconv.FormatUint(s.nextID, 16)
	if threadID == "" {
		for i := len(refs) - 1; i >= 0 && threadID == ""; i-- {
			threadID = s.threadOf[refs[i]]
		}
	}
	if threadID == "" {
		threadID = id
	}
	s.threads[threadID] = struct{}{}
	if ownID != "" {
		if _, ok := s.threadOf[ownID]; !ok {
			s.threadOf[ownID] = threadID
		}
	}
	s.historyID += historyStep
	m := &message{id: id, threadID: threadID, historyID: s.historyID, labels: labels,
		raw: append([]byte(nil), raw...), internalDate: at}
	s.msgs[id] = m
	s.order = append(s.order, m)
	s.history = append(s.history, historyRecord{id: s.historyID, msg: m})
	return m
}

// threadHeaders returns a message's own Message-Id and the ids in its
// In-Reply-To and References, read cheaply from the header alone.
func threadHeaders(raw []byte) (own string, refs []string) {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		end = bytes.Index(raw, []byte("\n\n"))
	}
	if end < 0 {
		end = len(raw)
	}
	m, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(append(raw[:end:end], "\r\n\r\n"...))))
	if err != nil {
		return "", nil
	}
	ids := func(v string) []string {
		var out []string
		for _, f := range strings.Fields(v) {
			if f = strings.Trim(f, "<>,"); f != "" {
				out = append(out, f)
			}
		}
		return out
	}
	if own := ids(m.Header.Get("Message-Id")); len(own) > 0 {
		return own[0], append(ids(m.Header.Get("References")), ids(m.Header.Get("In-Reply-To"))...)
	}
	return "", append(ids(m.Header.Get("References")), ids(m.Header.Get("In-Reply-To"))...)
}

// HistoryID returns the mailbox's current history id.
func (s *Server) HistoryID() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.historyID
}

// ExpireHistoryBefore makes history.list answer 404 for any
// startHistoryId below historyID, as Gmail does once it dropped the
// records.
func (s *Server) ExpireHistoryBefore(historyID uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expiredBefore = historyID
}

// RateLimitNext makes the next n requests (of any method, after the token
// check) answer HTTP 429 RESOURCE_EXHAUSTED, or with use403 HTTP 403
// PERMISSION_DENIED, both with reason rateLimitExceeded and, when
// retryAfter > 0, Retry-After in whole seconds (rounded up). Scripted
// answers are used in the order they were scripted, one per request.
func (s *Server) RateLimitNext(n int, retryAfter time.Duration, use403 bool) {
	status := http.StatusTooManyRequests
	if use403 {
		status = http.StatusForbidden
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.script = append(s.script, answer{status: status, reason: "rateLimitExceeded", retryAfter: retryAfter})
	}
}

// FailNext makes the next request answer status with Google's error body
// for it (reason backendError for 5xx, authError for 401, forbidden for
// 403, notFound for 404, failedPrecondition for 400, and so on).
func (s *Server) FailNext(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, answer{status: status})
}

// Sent returns the messages accepted by messages.send, oldest first.
func (s *Server) Sent() []SentMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SentMessage(nil), s.sent...)
}

// Calls returns how many requests each API method received, answered
// successfully or not, keyed by Gmail's method id: "users.getProfile",
// "users.history.list", "users.messages.list", "users.messages.get",
// "users.messages.send" ("unknown" for other paths).
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// Google's canonical status and a reason for each HTTP status the fake
// answers.
var statusNames = map[int][2]string{
	400: {"INVALID_ARGUMENT", "failedPrecondition"},
	401: {"UNAUTHENTICATED", "authError"},
	403: {"PERMISSION_DENIED", "forbidden"},
	404: {"NOT_FOUND", "notFound"},
	405: {"INVALID_ARGUMENT", "methodNotAllowed"},
	409: {"ABORTED", "conflict"},
	413: {"INVALID_ARGUMENT", "uploadTooLarge"},
	429: {"RESOURCE_EXHAUSTED", "rateLimitExceeded"},
	500: {"INTERNAL", "backendError"},
	502: {"UNAVAILABLE", "backendError"},
	503: {"UNAVAILABLE", "backendError"},
	504: {"DEADLINE_EXCEEDED", "backendError"},
}

// writeError answers Google's error shape. reason "" takes the status's
// default.
func writeError(w http.ResponseWriter, status int, reason, message string, retryAfter time.Duration) {
	names, ok := statusNames[status]
	if !ok {
		names = [2]string{"UNKNOWN", "unknown"}
	}
	if reason == "" {
		reason = names[1]
	}
	if message == "" {
		message = http.StatusText(status)
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(retryAfter.Seconds())), 10))
	}
	domain := "global"
	if status == http.StatusTooManyRequests || reason == "rateLimitExceeded" || reason == "userRateLimitExceeded" {
		domain = "usageLimits"
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code":    status,
		"message": message,
		"errors":  []map[string]string{{"message": message, "domain": domain, "reason": reason}},
		"status":  names[0],
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// route returns the method id of a request path under
// /gmail/v1/users/{user}/, and the message id for messages.get.
func route(method, path string) (op, id string, ok bool) {
	rest, found := strings.CutPrefix(path, "/gmail/v1/users/")
	if !found {
		return "unknown", "", false
	}
	_, rest, _ = strings.Cut(rest, "/")
	switch {
	case rest == "profile":
		return "users.getProfile", "", method == http.MethodGet
	case rest == "history":
		return "users.history.list", "", method == http.MethodGet
	case rest == "messages":
		return "users.messages.list", "", method == http.MethodGet
	case rest == "messages/send":
		return "users.messages.send", "", method == http.MethodPost
	case strings.HasPrefix(rest, "messages/") && !strings.Contains(rest[len("messages/"):], "/"):
		return "users.messages.get", rest[len("messages/"):], method == http.MethodGet
	}
	return "unknown", "", false
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	op, id, methodOK := route(r.Method, r.URL.Path)
	s.mu.Lock()
	s.calls[op]++
	latency, token, address, tokenValid := s.latency, s.token, s.address, s.tokenValid
	s.mu.Unlock()
	if latency > 0 {
		time.Sleep(latency)
	}

	user := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/gmail/v1/users/"), "/", 2)[0]
	got, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !bearer || got == "" || (token != "" && got != token) || (tokenValid != nil && !tokenValid(got)) {
		writeError(w, http.StatusUnauthorized, "authError",
			"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.", 0)
		return
	}
	if op == "unknown" {
		writeError(w, http.StatusNotFound, "", "gmailtest: no such method "+r.Method+" "+r.URL.Path, 0)
		return
	}
	if !methodOK {
		writeError(w, http.StatusMethodNotAllowed, "", "gmailtest: "+op+" does not take "+r.Method, 0)
		return
	}
	if user != "me" && !strings.EqualFold(user, address) {
		writeError(w, http.StatusForbidden, "", "Delegation denied for "+address, 0)
		return
	}

	s.mu.Lock()
	if len(s.script) > 0 {
		a := s.script[0]
		s.script = s.script[1:]
		s.mu.Unlock()
		writeError(w, a.status, a.reason, "", a.retryAfter)
		return
	}
	s.mu.Unlock()

	switch op {
	case "users.getProfile":
		s.profile(w)
	case "users.history.list":
		s.historyList(w, r)
	case "users.messages.list":
		s.list(w, r)
	case "users.messages.get":
		s.get(w, r, id)
	case "users.messages.send":
		s.send(w, r)
	}
}

func (s *Server) profile(w http.ResponseWriter) {
	s.mu.Lock()
	resp := map[string]any{
		"emailAddress":  s.address,
		"messagesTotal": len(s.order),
		"threadsTotal":  len(s.threads),
		"historyId":     strconv.FormatUint(s.historyID, 10),
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, resp)
}

// pageSize reads maxResults: def when absent, at most 500.
func pageSize(r *http.Request, def int) (int, bool) {
	v := r.URL.Query().Get("maxResults")
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, false
	}
	return min(n, 500), true
}

type messageRef struct {
	ID       string   `json:"id"`
	ThreadID string   `json:"threadId"`
	LabelIDs []string `json:"labelIds,omitempty"`
}

type historyJSON struct {
	ID            string       `json:"id"`
	Messages      []messageRef `json:"messages"`
	MessagesAdded []struct {
		Message messageRef `json:"message"`
	} `json:"messagesAdded"`
}

func (s *Server) historyList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	start, err := strconv.ParseUint(q.Get("startHistoryId"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalidArgument", "Invalid startHistoryId", 0)
		return
	}
	max, ok := pageSize(r, 100)
	if !ok {
		writeError(w, http.StatusBadRequest, "invalidArgument", "Invalid maxResults", 0)
		return
	}
	wantAdded := true
	if types := q["historyTypes"]; len(types) > 0 {
		wantAdded = false
		for _, t := range types {
			wantAdded = wantAdded || t == "messageAdded"
		}
	}
	label := q.Get("labelId")

	s.mu.Lock()
	if start < s.expiredBefore {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "notFound", "Requested entity was not found.", 0)
		return
	}
	i := sort.Search(len(s.history), func(i int) bool { return s.history[i].id > start })
	if tok := q.Get("pageToken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(s.history) {
			s.mu.Unlock()
			writeError(w, http.StatusBadRequest, "invalidArgument", "Invalid pageToken", 0)
			return
		}
		i = n
	}
	var records []historyJSON
	for ; wantAdded && i < len(s.history) && len(records) < max; i++ {
		h := s.history[i]
		if label != "" && !has(h.msg.labels, label) {
			continue
		}
		ref := messageRef{ID: h.msg.id, ThreadID: h.msg.threadID, LabelIDs: h.msg.labels}
		rec := historyJSON{ID: strconv.FormatUint(h.id, 10), Messages: []messageRef{{ID: ref.ID, ThreadID: ref.ThreadID}}}
		rec.MessagesAdded = append(rec.MessagesAdded, struct {
			Message messageRef `json:"message"`
		}{ref})
		records = append(records, rec)
	}
	resp := map[string]any{"historyId": strconv.FormatUint(s.historyID, 10)}
	if wantAdded && i < len(s.history) {
		resp["nextPageToken"] = strconv.Itoa(i)
	}
	s.mu.Unlock()
	if len(records) > 0 {
		resp["history"] = records
	}
	writeJSON(w, http.StatusOK, resp)
}

func has(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// filter is a parsed messages.list query.
type filter struct {
	after, before time.Time
	labels        []string
	notLabels     []string
	// messageID is rfc822msgid:'s Message-Id, without brackets.
	messageID string
}

func (f filter) match(m *message) bool {
	if !f.after.IsZero() && !m.internalDate.After(f.after) {
		return false
	}
	if !f.before.IsZero() && !m.internalDate.Before(f.before) {
		return false
	}
	if f.messageID != "" {
		if own, _ := threadHeaders(m.raw); !strings.EqualFold(own, f.messageID) {
			return false
		}
	}
	for _, l := range f.labels {
		if !has(m.labels, l) {
			return false
		}
	}
	for _, l := range f.notLabels {
		if has(m.labels, l) {
			return false
		}
	}
	return true
}

// parseQuery reads the part of Gmail's search language the fake supports:
// newer_than:/older_than: with d, m (months), y or h, after:/before: with
// YYYY/MM/DD or Unix seconds, in:/label: with an optional leading '-'.
// Anything else is an error, so that a test notices what the fake ignores.
func parseQuery(q string, now time.Time) (filter, error) {
	var f filter
	for _, term := range strings.Fields(q) {
		neg := strings.HasPrefix(term, "-")
		key, val, ok := strings.Cut(strings.TrimPrefix(term, "-"), ":")
		if !ok || val == "" {
			return f, fmt.Errorf("gmailtest: unsupported query term %q", term)
		}
		key = strings.ToLower(key)
		switch {
		case key == "rfc822msgid" && !neg:
			f.messageID = strings.Trim(val, "<>")
		case (key == "in" || key == "label") && neg:
			f.notLabels = append(f.notLabels, val)
		case key == "in" || key == "label":
			f.labels = append(f.labels, val)
		case (key == "newer_than" || key == "older_than") && !neg:
			n, err := strconv.Atoi(val[:len(val)-1])
			if err != nil || n < 0 {
				return f, fmt.Errorf("gmailtest: bad %s", term)
			}
			var t time.Time
			switch val[len(val)-1] {
			case 'h':
				t = now.Add(-time.Duration(n) * time.Hour)
			case 'd':
				t = now.AddDate(0, 0, -n)
			case 'm':
				t = now.AddDate(0, -n, 0)
			case 'y':
				t = now.AddDate(-n, 0, 0)
			default:
				return f, fmt.Errorf("gmailtest: bad %s", term)
			}
			if key == "newer_than" {
				f.after = t
			} else {
				f.before = t
			}
		case (key == "after" || key == "before") && !neg:
			var t time.Time
			if n, err := strconv.ParseInt(val, 10, 64); err == nil {
				t = time.Unix(n, 0)
			} else if t, err = time.ParseInLocation("2006/01/02", val, time.Local); err != nil {
				return f, fmt.Errorf("gmailtest: bad %s", term)
			}
			if key == "after" {
				f.after = t
			} else {
				f.before = t
			}
		default:
			return f, fmt.Errorf("gmailtest: unsupported query term %q", term)
		}
	}
	return f, nil
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := parseQuery(q.Get("q"), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalidArgument", err.Error(), 0)
		return
	}
	f.labels = append(f.labels, q["labelIds"]...)
	if q.Get("includeSpamTrash") != "true" {
		f.notLabels = append(f.notLabels, "SPAM", "TRASH")
	}
	max, ok := pageSize(r, 100)
	if !ok {
		writeError(w, http.StatusBadRequest, "invalidArgument", "Invalid maxResults", 0)
		return
	}
	s.mu.Lock()
	i := len(s.order) - 1
	if tok := q.Get("pageToken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < -1 || n >= len(s.order) {
			s.mu.Unlock()
			writeError(w, http.StatusBadRequest, "invalidArgument", "Invalid pageToken", 0)
			return
		}
		i = n
	}
	var refs []messageRef
	for ; i >= 0 && len(refs) < max; i-- {
		if m := s.order[i]; f.match(m) {
			refs = append(refs, messageRef{ID: m.id, ThreadID: m.threadID})
		}
	}
	s.mu.Unlock()
	resp := map[string]any{"resultSizeEstimate": len(refs)}
	if len(refs) > 0 {
		resp["messages"] = refs
	}
	if i >= 0 {
		resp["nextPageToken"] = strconv.Itoa(i)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, id string) {
	format := r.URL.Query().Get("format")
	if format != "raw" && format != "minimal" {
		writeError(w, http.StatusBadRequest, "invalidArgument", "gmailtest: only format=raw and format=minimal are supported", 0)
		return
	}
	s.mu.Lock()
	m, ok := s.msgs[id]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "notFound", "Requested entity was not found.", 0)
		return
	}
	resp := map[string]any{
		"id":           m.id,
		"threadId":     m.threadID,
		"labelIds":     m.labels,
		"snippet":      "",
		"historyId":    strconv.FormatUint(m.historyID, 10),
		"internalDate": strconv.FormatInt(m.internalDate.UnixMilli(), 10),
		"sizeEstimate": len(m.raw),
	}
	if format == "raw" {
		resp["raw"] = base64.URLEncoding.EncodeToString(m.raw)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Raw      string `json:"raw"`
		ThreadID string `json:"threadId"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalidArgument", "Invalid JSON payload received. "+err.Error(), 0)
		return
	}
	if req.Raw == "" {
		writeError(w, http.StatusBadRequest, "invalidArgument", "'raw' RFC822 payload message string or uploading message via /upload/* URL required", 0)
		return
	}
	// Gmail takes base64url only; standard base64's '+' and '/' are refused.
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(req.Raw, "="))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalidArgument", "Invalid value for ByteString: "+req.Raw[:min(len(req.Raw), 20)], 0)
		return
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalidArgument", "gmailtest: unreadable message: "+err.Error(), 0)
		return
	}
	if msg.Header.Get("To") == "" && msg.Header.Get("Cc") == "" && msg.Header.Get("Bcc") == "" {
		writeError(w, http.StatusBadRequest, "invalidArgument", "Recipient address required", 0)
		return
	}
	own, refs := threadHeaders(raw)
	s.mu.Lock()
	if req.ThreadID != "" {
		if _, ok := s.threads[req.ThreadID]; !ok {
			s.mu.Unlock()
			writeError(w, http.StatusNotFound, "notFound", "Requested entity was not found.", 0)
			return
		}
	}
	m := s.add(raw, req.ThreadID, own, refs, []string{"SENT"}, time.Now())
	s.sent = append(s.sent, SentMessage{ID: m.id, ThreadID: m.threadID, RequestThreadID: req.ThreadID, Raw: m.raw})
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, messageRef{ID: m.id, ThreadID: m.threadID, LabelIDs: m.labels})
}
