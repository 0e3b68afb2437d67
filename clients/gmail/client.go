// Package gmail is a client of the Gmail REST API
// (https://gmail.googleapis.com/gmail/v1/users/me/…), limited to what a
// help desk's mailbox sync needs: the profile, the history of added
// messages, listing, fetching raw messages and sending. It speaks plain
// net/http and JSON; authentication is the caller's (an http.Client whose
// transport adds the OAuth token, or a token function). Errors from Google
// are *APIError, classified by IsRateLimited, IsHistoryTooOld,
// IsUnauthorized and IsTemporary. Gmail's errors are kept apart from the
// help desk's own error codes on purpose: a Gmail 401 means the mailbox
// must be reconnected, not that the API caller is unauthenticated.
//
// gmail/gmailtest is a fake of the API for tests.
package gmail

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultBaseURL is Gmail's API endpoint.
const DefaultBaseURL = "https://gmail.googleapis.com"

// MaxMessageSize is the largest message Get downloads: 25 MiB of RFC 5322
// text, as much as Gmail lets anyone send (it accepts up to 50 MB from
// other providers). Get stops reading an answer that holds more and
// reports it with IsTooLarge, without downloading the rest.
const MaxMessageSize = 25 << 20

// maxResponse bounds a response body: a MaxMessageSize message in base64
// and JSON is about 33.4 MiB.
const maxResponse = MaxMessageSize/3*4 + 1<<20

// maxPageSize is Gmail's largest maxResults for history.list and
// messages.list; defaultListSize is List's when max is not positive.
const (
	maxPageSize     = 500
	defaultListSize = 100
)

// Client calls the Gmail API for the mailbox the credentials belong to
// ("users/me"). It is safe for concurrent use and keeps no state between
// calls.
type Client struct {
	base  string
	http  *http.Client
	token func(ctx context.Context) (string, error)
}

// New returns a client of the API at baseURL (DefaultBaseURL when "").
// httpClient makes the requests; nil means one with a 60-second timeout,
// and a client without a Timeout is copied with that timeout.
// token, when not nil, is called before each request for the OAuth access
// token sent as "Authorization: Bearer …"; leave it nil when httpClient's
// transport authenticates (golang.org/x/oauth2's does).
func New(baseURL string, httpClient *http.Client, token func(ctx context.Context) (string, error)) *Client {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 60 * time.Second}
	} else if httpClient.Timeout <= 0 {
		hc := *httpClient
		hc.Timeout = 60 * time.Second
		httpClient = &hc
	}
	return &Client{base: strings.TrimRight(baseURL, "/") + "/gmail/v1/users/me", http: httpClient, token: token}
}

// MessageRef names a message in a history record or a list: its id, its
// thread and, in history records, its labels when the message was added.
type MessageRef struct {
	ID       string
	ThreadID string
	LabelIDs []string
}

// HistoryPage is one page of users.history.list.
type HistoryPage struct {
	// MessageIDs are the ids of the messages added, oldest first, each
	// once, drafts left out (Gmail records a messageAdded for every draft
	// save). Messages sent from the mailbox are included (label SENT),
	// those this client sent too.
	MessageIDs []string
	// Messages are the same messages with their thread and labels.
	Messages []MessageRef
	// HistoryID is the mailbox's current history id. Store it as the next
	// start only after every page is processed (NextPageToken "").
	HistoryID uint64
	// NextPageToken is "" on the last page.
	NextPageToken string
}

// ListPage is one page of users.messages.list, newest first.
type ListPage struct {
	MessageIDs    []string
	Messages      []MessageRef
	NextPageToken string
}

// RawMessage is a message fetched with format=raw.
type RawMessage struct {
	ID        string
	ThreadID  string
	HistoryID uint64
	LabelIDs  []string
	// InternalDate is when Gmail received the message; zero when absent.
	InternalDate time.Time
	// SizeEstimate is Gmail's estimate of the message's size in bytes.
	SizeEstimate int64
	// Raw is the RFC 5322 message, base64url-decoded.
	Raw []byte
}

// Profile returns the mailbox's address and current history id
// (users.getProfile). Errors: see APIError and the Is* functions.
func (c *Client) Profile(ctx context.Context) (email string, historyID uint64, err error) {
	var resp struct {
		EmailAddress string   `json:"emailAddress"`
		HistoryID    uint64js `json:"historyId"`
	}
	if err := c.do(ctx, "users.getProfile", http.MethodGet, "/profile", nil, nil, &resp); err != nil {
		return "", 0, err
	}
	return resp.EmailAddress, uint64(resp.HistoryID), nil
}

// History returns the messages added since startHistoryID, 500 history
// records a page (users.history.list with historyTypes=messageAdded). Pass
// the previous page's NextPageToken, and the same startHistoryID, for the
// next page. When startHistoryID is too old (Gmail keeps about a week),
// the error satisfies IsHistoryTooOld: fall back to List and restart from
// Profile's history id.
func (c *Client) History(ctx context.Context, startHistoryID uint64, pageToken string) (HistoryPage, error) {
	q := url.Values{
		"startHistoryId": {strconv.FormatUint(startHistoryID, 10)},
		"historyTypes":   {"messageAdded"},
		"maxResults":     {strconv.Itoa(maxPageSize)},
	}
	if pageToken != "" {
		q.Set("pageToken", pageToken)
	}
	var resp struct {
		History []struct {
			MessagesAdded []struct {
				Message messageJSON `json:"message"`
			} `json:"messagesAdded"`
		} `json:"history"`
		NextPageToken string   `json:"nextPageToken"`
		HistoryID     uint64js `json:"historyId"`
	}
	if err := c.do(ctx, "users.history.list", http.MethodGet, "/history", q, nil, &resp); err != nil {
		return HistoryPage{}, err
	}
	page := HistoryPage{HistoryID: uint64(resp.HistoryID), NextPageToken: resp.NextPageToken}
	seen := map[string]bool{}
	for _, h := range resp.History {
		for _, a := range h.MessagesAdded {
			m := a.Message
			if m.ID == "" || seen[m.ID] || contains(m.LabelIDs, "DRAFT") {
				continue
			}
			seen[m.ID] = true
			page.MessageIDs = append(page.MessageIDs, m.ID)
			page.Messages = append(page.Messages, MessageRef{ID: m.ID, ThreadID: m.ThreadID, LabelIDs: m.LabelIDs})
		}
	}
	return page, nil
}

// List returns messages matching a Gmail search query, newest first
// (users.messages.list), for the bounded fallback when the history is too
// old, e.g. query "newer_than:7d". max is the page size: 100 when not
// positive, at most 500. Spam and trash are left out, as Gmail does by
// default.
func (c *Client) List(ctx context.Context, query string, max int, pageToken string) (ListPage, error) {
	if max <= 0 {
		max = defaultListSize
	}
	q := url.Values{"maxResults": {strconv.Itoa(min(max, maxPageSize))}}
	if query != "" {
		q.Set("q", query)
	}
	if pageToken != "" {
		q.Set("pageToken", pageToken)
	}
	var resp struct {
		Messages      []messageJSON `json:"messages"`
		NextPageToken string        `json:"nextPageToken"`
	}
	if err := c.do(ctx, "users.messages.list", http.MethodGet, "/messages", q, nil, &resp); err != nil {
		return ListPage{}, err
	}
	page := ListPage{NextPageToken: resp.NextPageToken}
	for _, m := range resp.Messages {
		page.MessageIDs = append(page.MessageIDs, m.ID)
		page.Messages = append(page.Messages, MessageRef{ID: m.ID, ThreadID: m.ThreadID, LabelIDs: m.LabelIDs})
	}
	return page, nil
}

// Get fetches a message with format=raw (users.messages.get). A message
// deleted since it was listed is an APIError with Status 404. A message
// over MaxMessageSize is an error that satisfies IsTooLarge: reading stops
// once the answer is too large for one (GetMinimal then tells its size).
func (c *Client) Get(ctx context.Context, id string) (RawMessage, error) {
	if id == "" {
		return RawMessage{}, fmt.Errorf("gmail: users.messages.get: empty message id")
	}
	var resp messageJSON
	if err := c.do(ctx, "users.messages.get", http.MethodGet, "/messages/"+url.PathEscape(id), url.Values{"format": {"raw"}}, nil, &resp); err != nil {
		return RawMessage{}, err
	}
	raw, err := decodeBase64URL(resp.Raw)
	if err != nil {
		return RawMessage{}, fmt.Errorf("gmail: users.messages.get %s: raw is not base64url: %w", id, err)
	}
	if len(raw) > MaxMessageSize {
		return RawMessage{}, &tooLargeError{op: "users.messages.get"}
	}
	m := resp.message()
	m.Raw = raw
	return m, nil
}

// GetMinimal fetches a message's id, thread, labels, date and size
// estimate, without its content (users.messages.get with format=minimal):
// what to record of a message too large to download. Errors as Get's.
func (c *Client) GetMinimal(ctx context.Context, id string) (RawMessage, error) {
	if id == "" {
		return RawMessage{}, fmt.Errorf("gmail: users.messages.get: empty message id")
	}
	var resp messageJSON
	if err := c.do(ctx, "users.messages.get", http.MethodGet, "/messages/"+url.PathEscape(id), url.Values{"format": {"minimal"}}, nil, &resp); err != nil {
		return RawMessage{}, err
	}
	return resp.message(), nil
}

// Send sends raw, an RFC 5322 message such as mail.BuildReply writes,
// from the mailbox (users.messages.send) and returns the new message's id.
// threadID, when not "", puts it in that Gmail thread; Gmail requires the
// message's References or In-Reply-To and its Subject to fit the thread.
// Gmail may replace the Message-ID header; Get the sent message to learn
// the one recipients see. Send is not idempotent: a retry after a timeout
// can send twice.
func (c *Client) Send(ctx context.Context, raw []byte, threadID string) (id string, err error) {
	body := struct {
		Raw      string `json:"raw"`
		ThreadID string `json:"threadId,omitempty"`
	}{Raw: base64.URLEncoding.EncodeToString(raw), ThreadID: threadID}
	var resp messageJSON
	if err := c.do(ctx, "users.messages.send", http.MethodPost, "/messages/send", nil, body, &resp); err != nil {
		return "", err
	}
	return resp.ID, nil
}

// messageJSON is Gmail's Message resource, as far as it is used.
type messageJSON struct {
	ID           string   `json:"id"`
	ThreadID     string   `json:"threadId"`
	LabelIDs     []string `json:"labelIds"`
	HistoryID    uint64js `json:"historyId"`
	InternalDate uint64js `json:"internalDate"`
	SizeEstimate uint64js `json:"sizeEstimate"`
	Raw          string   `json:"raw"`
}

// message is m without its content.
func (m messageJSON) message() RawMessage {
	out := RawMessage{ID: m.ID, ThreadID: m.ThreadID, HistoryID: uint64(m.HistoryID), LabelIDs: m.LabelIDs, SizeEstimate: int64(m.SizeEstimate)}
	if m.InternalDate > 0 {
		out.InternalDate = time.UnixMilli(int64(m.InternalDate))
	}
	return out
}

// uint64js reads a uint64 that Gmail sends as a JSON string ("123"), as the
// API does for int64 and uint64 fields; a number or "" is accepted too.
type uint64js uint64

func (u *uint64js) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*u = 0
		return nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an unsigned integer: %s", b)
	}
	*u = uint64js(n)
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// decodeBase64URL decodes base64url with or without padding.
func decodeBase64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(s), "="))
}

// do makes one API call and decodes a 2xx answer into out; other answers
// become *APIError, failures to reach Google *requestError.
func (c *Client) do(ctx context.Context, op, method, path string, q url.Values, in, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("gmail: %s: %w", op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("gmail: %s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != nil {
		tok, err := c.token(ctx)
		if err != nil {
			return fmt.Errorf("gmail: %s: token: %w", op, err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &requestError{op: op, err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return &requestError{op: op, err: err}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return newAPIError(op, resp, b, time.Now())
	}
	if len(b) > maxResponse {
		return &tooLargeError{op: op}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("gmail: %s: unreadable answer: %w", op, err)
	}
	return nil
}
