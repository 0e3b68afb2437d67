package mailsync

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/helpdeskflow/helpdeskflow/clients/gmail"
	"github.com/helpdeskflow/helpdeskflow/commands/tickets"
	"github.com/helpdeskflow/helpdeskflow/mailsync/mail"
)

// gmailState is a Gmail mailbox's cursor: the history id to read on from
// (stored only after a run has read every page up to it) and the
// mailbox's address.
type gmailState struct {
	HistoryID uint64 `json:"history_id,string"`
	Address   string `json:"address"`
}

// checkpointEvery is how many messages a run imports between checks that
// it still holds its lease.
const checkpointEvery = 200

// tokenReuse is how long a run reuses an access token before asking for
// it again (the manager refreshes tokens minutes before they expire, so a
// token handed out is good for longer than this).
const tokenReuse = time.Minute

func (r *run) gmailClient() *gmail.Client {
	return gmail.New(r.w.cfg.GmailBaseURL, r.w.cfg.HTTPClient, r.accessToken)
}

// accessToken returns the connection's access token, asking the manager
// (a Postgres read) at most once per tokenReuse in a run. A run is
// one goroutine.
func (r *run) accessToken(ctx context.Context) (string, error) {
	if r.token != "" && time.Since(r.tokenAt) < tokenReuse {
		return r.token, nil
	}
	token, err := r.w.cfg.Tokens.AccessToken(ctx, r.conn.WorkspaceID, r.conn.ID)
	if err != nil {
		return "", err
	}
	r.token, r.tokenAt = token, time.Now()
	return token, nil
}

// syncGmail reads what was added to the mailbox since the stored history
// id, page by page, importing as it goes; the new history id is stored
// only when the last page is done, so an interrupted run reads the same
// pages again (their messages are known by then and not fetched). With no
// history id yet, or one Gmail no longer keeps, it lists the messages of
// the window instead (oldest first) and starts from the mailbox's
// current history id, taken before listing so nothing that arrives
// meanwhile is missed.
func (r *run) syncGmail(ctx context.Context) error {
	var st gmailState
	if len(r.conn.SyncState) > 0 {
		if err := json.Unmarshal(r.conn.SyncState, &st); err != nil {
			return fmt.Errorf("read the stored Gmail cursor: %w", err)
		}
	}
	client := r.gmailClient()
	if st.HistoryID != 0 {
		pageToken := ""
		for {
			page, err := client.History(ctx, st.HistoryID, pageToken)
			if gmail.IsHistoryTooOld(err) {
				r.w.cfg.Logger.Info("mail sync: Gmail history too old, listing the window instead", "connection", r.conn.ID)
				break
			}
			if err != nil {
				return err
			}
			var ids []string
			for _, m := range page.Messages {
				if !slices.Contains(m.LabelIDs, "SENT") {
					ids = append(ids, m.ID)
				}
			}
			if err := r.importGmail(ctx, client, st.Address, ids); err != nil {
				return err
			}
			if page.NextPageToken == "" {
				st.HistoryID = page.HistoryID
				return r.setState(st)
			}
			pageToken = page.NextPageToken
		}
	}
	address, historyID, err := client.Profile(ctx)
	if err != nil {
		return err
	}
	st.Address = address
	after := r.w.now().Add(-r.w.cfg.Window)
	if r.conn.LastSyncAt != nil && r.conn.LastSyncAt.After(after) {
		after = r.conn.LastSyncAt.Add(-timeSlack)
	}
	ids, err := r.listGmail(ctx, client, "after:"+strconv.FormatInt(after.Unix(), 10)+" -in:sent")
	if err != nil {
		return err
	}
	if err := r.importGmail(ctx, client, st.Address, ids); err != nil {
		return err
	}
	st.HistoryID = historyID
	return r.setState(st)
}

// listGmail returns the ids of the messages matching query, oldest first,
// at most MaxBackfill (the newest ones).
func (r *run) listGmail(ctx context.Context, client *gmail.Client, query string) ([]string, error) {
	var ids []string
	pageToken := ""
	for len(ids) < r.w.cfg.MaxBackfill {
		page, err := client.List(ctx, query, 500, pageToken)
		if err != nil {
			return nil, err
		}
		ids = append(ids, page.MessageIDs...)
		if pageToken = page.NextPageToken; pageToken == "" {
			break
		}
	}
	if len(ids) > r.w.cfg.MaxBackfill {
		ids = ids[:r.w.cfg.MaxBackfill]
	}
	slices.Reverse(ids)
	return ids, nil
}

// importGmail fetches and imports the messages of ids the mailbox has not
// recorded, in order. Messages the mailbox sent (label SENT), drafts and
// messages over gmail.MaxMessageSize (not downloaded) are recorded as
// skipped; a message deleted since it was listed is left.
func (r *run) importGmail(ctx context.Context, client *gmail.Client, address string, ids []string) error {
	for start := 0; start < len(ids); start += checkpointEvery {
		chunk, err := r.newIDs(ctx, ids[start:min(start+checkpointEvery, len(ids))])
		if err != nil {
			return err
		}
		for _, id := range chunk {
			raw, err := client.Get(ctx, id)
			tooLarge := gmail.IsTooLarge(err)
			if tooLarge {
				raw, err = client.GetMinimal(ctx, id)
				if err == nil {
					r.w.cfg.Logger.Warn("mail sync: a message is too large to import", "connection", r.conn.ID, "message", id, "bytes", raw.SizeEstimate)
					err = r.importMessage(ctx, tickets.ImportMail{ConnectionID: r.conn.ID, ExternalID: id, ThreadID: raw.ThreadID,
						Skip: fmt.Sprintf("%s: about %d bytes, over the limit of %d", SkipTooLarge, raw.SizeEstimate, gmail.MaxMessageSize)})
				}
			}
			if apiErr, ok := err.(*gmail.APIError); ok && apiErr.Status == 404 {
				continue
			}
			if err != nil {
				return err
			}
			if tooLarge {
				continue
			}
			m, perr := mail.Parse(raw.Raw)
			m.ID, m.ThreadID = raw.ID, raw.ThreadID
			in := convert(r.conn.ID, raw.ID, address, m)
			switch {
			case slices.Contains(raw.LabelIDs, "SENT"), slices.Contains(raw.LabelIDs, "DRAFT"):
				in.Skip = SkipOwnMessage
			case perr != nil:
				in.Skip = unreadable(perr)
			}
			if err := r.importMessage(ctx, in); err != nil {
				return err
			}
		}
		if err := r.checkpoint(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) setState(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	r.state = b
	return nil
}
