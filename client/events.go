package client

import (
	"context"
	"iter"
	"net/url"
	"strconv"
	"sync"
)

// Feed reads the workspace's change feed (GET /v1/events) from a cursor:
// every event in commit order, gap-free and resumable. Agent keys see only
// ticket and customer events. A Feed is not safe for concurrent use.
type Feed struct {
	c        *Client
	pageSize int
	mu       sync.Mutex
	cursor   string
}

// Events returns the feed after cursor ("" for the beginning, else a
// cursor an earlier Feed.Cursor returned); pageSize is the events per
// request (1 to 1,000; 0: the server's default, 100).
func (c *Client) Events(after string, pageSize int) *Feed {
	return &Feed{c: c, pageSize: pageSize, cursor: after}
}

// Cursor is where the feed resumes: after the last page whose events the
// iteration went through entirely (so an iteration stopped within a page
// sees that page's events again: at least once). Keep it to resume later.
func (f *Feed) Cursor() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cursor
}

// All iterates over the events from Cursor on, page by page, until the
// cursor stops moving (the feed is caught up; iterate again later for what
// follows). An error is yielded once and ends the iteration.
func (f *Feed) All(ctx context.Context) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for {
			q := url.Values{}
			if cursor := f.Cursor(); cursor != "" {
				q.Set("after", cursor)
			}
			if f.pageSize > 0 {
				q.Set("limit", strconv.Itoa(f.pageSize))
			}
			var page eventPage
			if _, err := f.c.do(ctx, rEvents.call(q, nil, &page)); err != nil {
				yield(Event{}, err)
				return
			}
			for _, e := range page.Events {
				if !yield(e, nil) {
					return
				}
			}
			f.mu.Lock()
			moved := page.NextCursor != "" && page.NextCursor != f.cursor
			if page.NextCursor != "" {
				f.cursor = page.NextCursor
			}
			f.mu.Unlock()
			if !moved {
				return
			}
		}
	}
}
