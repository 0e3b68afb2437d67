package mail_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/store/mail"
)

// Old records of skipped mail go, a bounded batch at a time; records tied
// to a ticket (threading needs them) and young ones stay.
func TestStore_PurgeSkippedMail(t *testing.T) {
	ctx := context.Background()
	db := testenv.Postgres(t)
	store := mail.New(db)
	conn, ws := uuid.New(), uuid.New()
	now := time.Now()
	old, young := now.Add(-40*24*time.Hour), now.Add(-time.Hour)
	record := func(id string, ticket *uuid.UUID, at time.Time) {
		t.Helper()
		skipped := ""
		if ticket == nil {
			skipped = "auto_reply"
		}
		if _, err := db.Pool().Exec(ctx, `INSERT INTO mail_messages (connection_id, external_id, workspace_id, ticket_id, direction, thread_id, skipped, created_at)
			VALUES ($1, $2, $3, $4, 'in', 'thread-1', $5, $6)`, conn, id, ws, ticket, skipped, at); err != nil {
			t.Fatal(err)
		}
	}
	ticket := uuid.New()
	for _, id := range []string{"old-skipped-1", "old-skipped-2", "old-skipped-3"} {
		record(id, nil, old)
	}
	record("old-ticket", &ticket, old)
	record("young-skipped", nil, young)

	cutoff := now.Add(-30 * 24 * time.Hour)
	if n, err := store.PurgeSkippedMail(ctx, cutoff, 2); err != nil || n != 2 {
		t.Fatalf("first batch of 2: got %d, %v", n, err)
	}
	if n, err := store.PurgeSkippedMail(ctx, cutoff, 100); err != nil || n != 1 {
		t.Fatalf("rest: got %d (want 1), %v", n, err)
	}
	known, err := store.ImportedMail(ctx, conn, []string{"old-skipped-1", "old-skipped-2", "old-skipped-3", "old-ticket", "young-skipped"})
	if err != nil {
		t.Fatal(err)
	}
	if len(known) != 2 || !known["old-ticket"] || !known["young-skipped"] {
		t.Errorf("records left: got %v, want old-ticket and young-skipped", known)
	}
	thread, err := store.MailThread(ctx, ticket)
	if err != nil || len(thread) != 1 {
		t.Errorf("the ticket's thread: got %d records, %v; want 1", len(thread), err)
	}
}
