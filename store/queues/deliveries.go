package queues

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// EnqueueDeliveries records deliveries before any attempt; a delivery of
// an event a webhook already has is left alone (a Kafka redelivery). A
// delivery to a deleted (or unknown) webhook is recorded as cancelled and
// never attempted. A paused webhook's deliveries are recorded pending and
// held (claims skip paused webhooks); when a delivery is marked Held and
// its webhook is paused, past the Store's held cap
// (helpdeskflow.MaxHeldDeliveries unless WithHeldCap) the webhook's oldest
// pending deliveries not in flight are marked dropped and counted in its
// dropped_deliveries. Each recorded delivery waits behind any pending
// delivery of an earlier event of its stream to its webhook; one of an
// earlier event than those pending (recorded out of order) goes first. The
// deliveries, of any webhooks and events, are recorded in one transaction
// of a fixed number of statements, sent in one round trip.
func (s *Store) EnqueueDeliveries(ctx context.Context, ds []helpdeskflow.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	n := len(ds)
	ids, hooks, workspaces, events, streams := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n)
	types, versions, payloads, maxAttempts, at := make([]string, n), make([]int64, n), make([][]byte, n), make([]int32, n), make([]*time.Time, n)
	replays := make([]*uuid.UUID, n)
	for i, d := range ds {
		ids[i], hooks[i], workspaces[i], events[i], streams[i] = d.ID, d.WebhookID, d.WorkspaceID, d.EventID, d.StreamID
		types[i], versions[i], payloads[i], maxAttempts[i], at[i] = d.EventType, d.StreamVersion, d.Payload, int32(d.MaxAttempts), d.NextAttemptAt
		if d.ReplayID != uuid.Nil {
			replays[i] = &ds[i].ReplayID
		}
	}
	b := beginDeliveryChange(lockWebhooks, hooks)
	// ON CONFLICT without a target: a live delivery is unique per
	// (webhook, event), a replay's per (replay, event) (migration 0027).
	b.Queue(`INSERT INTO webhook_deliveries (id, webhook_id, workspace_id, event_id, event_type, stream_id, stream_version,
			payload, status, max_attempts, next_attempt_at, created_at, updated_at, replay_id)
		SELECT d.id, d.webhook_id, d.workspace_id, d.event_id, d.event_type, d.stream_id, d.stream_version, d.payload, s.status,
			d.max_attempts, CASE WHEN s.status = 'pending' THEN d.at END, d.at, d.at, d.replay_id
		FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::uuid[], $7::bigint[], $8::bytea[], $9::int[], $10::timestamptz[], $11::uuid[])
			AS d(id, webhook_id, workspace_id, event_id, event_type, stream_id, stream_version, payload, max_attempts, at, replay_id)
		CROSS JOIN LATERAL (SELECT CASE WHEN EXISTS (SELECT 1 FROM webhooks w WHERE w.id = d.webhook_id AND w.deleted_at IS NULL)
			THEN 'pending' ELSE 'cancelled' END AS status) s
		ON CONFLICT DO NOTHING`,
		ids, hooks, workspaces, events, types, streams, versions, payloads, maxAttempts, at, replays)
	b.Queue(demoteLaterHeads, ids)
	if held := heldWebhooks(ds); len(held) > 0 {
		b.Queue(dropOverHeldCap, held, s.heldCap, time.Now())
	}
	endDeliveryChange(b, ids)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return pg.Internal("enqueue deliveries", err)
	}
	for _, d := range ds {
		if d.NextAttemptAt != nil {
			s.cursors.lower(d.WebhookID, *d.NextAttemptAt)
		}
	}
	return nil
}

// The claim's candidates are the heads: for each (webhook, stream) with
// pending deliveries, the one of the lowest stream_version has head set,
// and only it may be attempted. Every change to which deliveries are
// pending runs in one transaction that first locks the webhooks it touches
// (lockWebhooks or lockWebhooksOf: in id order, before any delivery row,
// and in conflict with LockWebhook's FOR UPDATE, so deleting a webhook
// waits for them and they for it), changes statuses (a delivery leaving
// pending loses head), takes head from later deliveries when an earlier
// one became pending (demoteLaterHeads) and gives it to each touched
// pair's lowest pending delivery (promoteHeads). Under the lock each
// statement sees what the previous holder committed, so a successor
// recorded while its predecessor finishes is never left without a head.
// Deliveries of one event (a live one and a replay's) are ordered by
// creation, then id, so a pair has one head.
const (
	lockWebhooks = `SELECT 1 FROM webhooks WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`
	// lockWebhooksOf locks the webhooks of the deliveries $1.
	lockWebhooksOf = `SELECT 1 FROM webhooks WHERE id IN (SELECT webhook_id FROM webhook_deliveries WHERE id = ANY($1))
		ORDER BY id FOR NO KEY UPDATE`
	// demoteLaterHeads: the pending deliveries $1 go before later pending
	// deliveries of their (webhook, stream). Its shape holds whatever the
	// statistics say: the deliveries $1 by their primary key, then each
	// one's later pending deliveries through the order index (the OFFSET 0
	// fences keep the planner from reading either side through a partial
	// index that statistics taken while the queue was empty make look
	// tiny: with such a plan, a batch of 1,000 enqueued while 70,000
	// were pending ran for minutes, a nested loop over every pending head).
	demoteLaterHeads = `UPDATE webhook_deliveries d SET head = false
		FROM (SELECT n.id, n.webhook_id, n.stream_id, n.stream_version, n.created_at, n.status FROM webhook_deliveries n WHERE n.id = ANY($1) OFFSET 0) n
		CROSS JOIN LATERAL (SELECT e.id, e.head FROM webhook_deliveries e WHERE e.webhook_id = n.webhook_id AND e.stream_id = n.stream_id
			AND e.status = 'pending' AND e.stream_version >= n.stream_version AND (e.stream_version, e.created_at, e.id) > (n.stream_version, n.created_at, n.id) OFFSET 0) l
		WHERE n.status = 'pending' AND l.head AND d.id = l.id`
	// promoteHeads: the lowest pending delivery of the (webhook, stream)
	// of each delivery $1 is its head.
	promoteHeads = `UPDATE webhook_deliveries d SET head = true
		FROM (SELECT DISTINCT webhook_id, stream_id FROM webhook_deliveries WHERE id = ANY($1)) p
		WHERE d.id = (SELECT e.id FROM webhook_deliveries e WHERE e.webhook_id = p.webhook_id AND e.stream_id = p.stream_id
				AND e.status = 'pending' ORDER BY e.stream_version, e.created_at, e.id LIMIT 1)
			AND NOT d.head
		RETURNING d.webhook_id, d.next_attempt_at`
	// promoteHeadsOf is promoteHeads of the (webhook, stream) pairs $1, $2
	// (FinishAttempts knows them: no delivery to look up).
	promoteHeadsOf = `UPDATE webhook_deliveries d SET head = true
		FROM (SELECT DISTINCT webhook_id, stream_id FROM unnest($1::uuid[], $2::uuid[]) AS p(webhook_id, stream_id)) p
		WHERE d.id = (SELECT e.id FROM webhook_deliveries e WHERE e.webhook_id = p.webhook_id AND e.stream_id = p.stream_id
				AND e.status = 'pending' ORDER BY e.stream_version, e.created_at, e.id LIMIT 1)
			AND NOT d.head
		RETURNING d.webhook_id, d.next_attempt_at`
)

// heldWebhooks returns the webhooks of the deliveries recorded as held
// (for a paused webhook), whose held cap the enqueue checks.
func heldWebhooks(ds []helpdeskflow.Delivery) []uuid.UUID {
	var out []uuid.UUID
	for _, d := range ds {
		if d.Held {
			out = append(out, d.WebhookID)
		}
	}
	return out
}

// dropOverHeldCap: of each paused webhook among $1 with more than $2
// pending deliveries, the oldest pending ones not leased at $3 (in
// flight) are dropped until $2 remain, counted on the webhook, and their
// streams' next pending deliveries become heads (the last statement's
// snapshot does not see the drop, hence NOT IN dropped).
const dropOverHeldCap = `WITH over AS (
		SELECT w.id, (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id AND d.status = 'pending') - $2::int AS excess
		FROM webhooks w WHERE w.id IN (SELECT DISTINCT unnest($1::uuid[])) AND NOT w.active AND w.deleted_at IS NULL
	), dropped AS (
		UPDATE webhook_deliveries d SET status = 'dropped', head = false, next_attempt_at = NULL, updated_at = $3
		FROM over o CROSS JOIN LATERAL (SELECT e.id FROM webhook_deliveries e
			WHERE e.webhook_id = o.id AND e.status = 'pending' AND (e.leased_until IS NULL OR e.leased_until <= $3) AND o.excess > 0
			ORDER BY e.created_at, e.stream_version LIMIT greatest(o.excess, 0)) v
		WHERE d.id = v.id
		RETURNING d.id, d.webhook_id, d.stream_id
	), counted AS (
		UPDATE webhooks w SET dropped_deliveries = w.dropped_deliveries + c.n
		FROM (SELECT webhook_id, count(*) AS n FROM dropped GROUP BY webhook_id) c WHERE w.id = c.webhook_id
	)
	UPDATE webhook_deliveries d SET head = true
	FROM (SELECT DISTINCT webhook_id, stream_id FROM dropped) p
	WHERE d.id = (SELECT e.id FROM webhook_deliveries e WHERE e.webhook_id = p.webhook_id AND e.stream_id = p.stream_id
			AND e.status = 'pending' AND e.id NOT IN (SELECT id FROM dropped) ORDER BY e.stream_version, e.created_at, e.id LIMIT 1)
		AND NOT d.head`

// beginDeliveryChange starts a one-round-trip transaction that changes
// deliveries: BEGIN, then lock (lockWebhooks or lockWebhooksOf) with ids.
func beginDeliveryChange(lock string, ids []uuid.UUID) *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue("begin")
	b.Queue(lock, ids)
	return b
}

// endDeliveryChange gives heads to the pairs of deliveries ids and
// commits. A failed statement leaves the transaction failed, and the pool
// drops such a connection (rolled back).
func endDeliveryChange(b *pgx.Batch, ids []uuid.UUID) {
	b.Queue(promoteHeads, ids)
	b.Queue("commit")
}

// ClaimedDelivery is a delivery a worker leased for one attempt, with what
// the attempt needs from its webhook.
type ClaimedDelivery struct {
	helpdeskflow.Delivery
	URL     string
	Secrets helpdeskflow.WebhookSecrets
}

// ClaimDeliveries leases up to limit deliveries due at now for one attempt
// each (attempts counts it): a leased delivery's leased_until is
// now+lease, so no claim takes it while it is in flight, and it is due
// again if its worker dies (a finished or released attempt clears the
// lease). It takes at most room[w] deliveries of a webhook w in
// room (none when room[w] ≤ 0) and perWebhook of any other, the earliest
// due of each, then the earliest due of all; deleted webhooks are skipped.
// Only heads are candidates: never a delivery while an earlier event of
// the same stream is still pending for that webhook, so each (stream,
// webhook) is delivered in order, and the deliveries held back that way
// cost a claim nothing. Rows other workers hold are skipped, so many
// workers share the queue.
//
// Most claims start each webhook's scan where this process's last claim
// of it ended (claimCursors), so they read neither the deliveries in
// flight nor those finished since the last vacuum, and their cost grows
// only with the webhooks this process delivers to and with what they
// return. A delivery that this process made claimable behind a cursor
// moves the cursor back; one that another process did is found by a full
// claim, which walks the webhooks that have heads (a skip scan of their
// index) from their earliest due: when there are no cursors, when the
// last claim from cursors found nothing, and at least every second
// (fullClaimEvery) of now.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, limit, perWebhook int, room map[uuid.UUID]int, lease time.Duration) ([]ClaimedDelivery, error) {
	roomIDs, roomN := make([]uuid.UUID, 0, len(room)), make([]int32, 0, len(room))
	for id, n := range room {
		roomIDs, roomN = append(roomIDs, id), append(roomN, int32(max(n, 0)))
	}
	plan := s.cursors.plan(now)
	b := &pgx.Batch{}
	b.Queue("begin")
	b.Queue(asyncCommit)
	if plan.full {
		b.Queue(claimAll, now, limit, roomIDs, lease, perWebhook, roomN)
	} else {
		b.Queue(claimFromCursors, now, limit, roomIDs, lease, perWebhook, roomN, plan.ids, plan.after)
	}
	b.Queue("commit")
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	_, err := br.Exec() // begin
	if err == nil {
		_, err = br.Exec() // asyncCommit
	}
	var out []ClaimedDelivery
	if err == nil {
		var rows pgx.Rows
		rows, err = br.Query()
		if err == nil {
			out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ClaimedDelivery, error) {
				var c ClaimedDelivery
				var replay *uuid.UUID
				err := r.Scan(&c.ID, &c.WebhookID, &c.WorkspaceID, &c.EventID, &c.EventType, &c.StreamID, &c.StreamVersion, &c.Payload,
					&c.Attempts, &c.MaxAttempts, &c.NextAttemptAt, &c.CreatedAt, &c.URL, &c.Secrets.Current, &c.Secrets.Previous, &c.Secrets.PreviousSecretUntil, &replay)
				c.Status = helpdeskflow.DeliveryPending
				if replay != nil {
					c.ReplayID = *replay
				}
				return c, err
			})
		}
	}
	if err == nil {
		err = br.Close() // commit: only committed leases are this worker's
	}
	if err != nil {
		return nil, pg.Internal("claim deliveries", err)
	}
	s.cursors.claimed(plan, out, limit, func(id uuid.UUID) bool { n, ok := room[id]; return ok && n <= 0 })
	return out, nil
}

// The claim: claimAll and claimFromCursors differ only in the webhooks
// they read and where they start reading each (room: id, after, n, and
// the webhook's url and secrets); $1 now, $2 limit, $3/$6 the room of
// webhooks the worker holds deliveries of, $4 lease, $5 perWebhook.
// Each webhook's earliest due heads from after on are locked as the
// index yields them (rows other workers hold are skipped) and updated
// through their ctid, so a claimed row is fetched once.
const (
	claimAll = `WITH RECURSIVE hooks AS (
			(SELECT webhook_id FROM webhook_deliveries WHERE status = 'pending' AND head ORDER BY webhook_id LIMIT 1)
			UNION ALL
			SELECT (SELECT d.webhook_id FROM webhook_deliveries d WHERE d.status = 'pending' AND d.head AND d.webhook_id > h.webhook_id
				ORDER BY d.webhook_id LIMIT 1)
			FROM hooks h WHERE h.webhook_id IS NOT NULL
		), room AS (
			SELECT h.webhook_id AS id, '-infinity'::timestamptz AS after, coalesce(r.n, $5::int) AS n,
				w.url, w.secret, w.previous_secret, w.previous_secret_until FROM hooks h
			JOIN webhooks w ON w.id = h.webhook_id AND w.deleted_at IS NULL AND w.active
			LEFT JOIN unnest($3::uuid[], $6::int[]) AS r(id, n) ON r.id = h.webhook_id
		)` + claimTail
	// claimFromCursors: $7 the webhooks with cursors, $8 their cursors.
	claimFromCursors = `WITH room AS (
			SELECT k.id, k.after, coalesce(r.n, $5::int) AS n, w.url, w.secret, w.previous_secret, w.previous_secret_until
			FROM unnest($7::uuid[], $8::timestamptz[]) AS k(id, after)
			JOIN webhooks w ON w.id = k.id AND w.deleted_at IS NULL AND w.active
			LEFT JOIN unnest($3::uuid[], $6::int[]) AS r(id, n) ON r.id = k.id
		)` + claimTail
	claimTail = `, due AS (
			SELECT c.tid, r.url, r.secret, r.previous_secret, r.previous_secret_until FROM room r
			CROSS JOIN LATERAL (SELECT d.ctid AS tid, d.next_attempt_at FROM webhook_deliveries d
				WHERE d.webhook_id = r.id AND d.status = 'pending' AND d.head AND d.next_attempt_at >= r.after AND d.next_attempt_at <= $1
					AND (d.leased_until IS NULL OR d.leased_until <= $1)
				ORDER BY d.next_attempt_at LIMIT least(r.n, $2) FOR UPDATE OF d SKIP LOCKED) c
			WHERE r.n > 0
			ORDER BY c.next_attempt_at LIMIT $2
		)
		UPDATE webhook_deliveries d SET leased_until = $1::timestamptz + $4::interval, attempts = d.attempts + 1, updated_at = $1
		FROM due WHERE d.ctid = due.tid
		RETURNING d.id, d.webhook_id, d.workspace_id, d.event_id, d.event_type, d.stream_id, d.stream_version, d.payload,
			d.attempts, d.max_attempts, d.next_attempt_at, d.created_at, due.url, due.secret, due.previous_secret, due.previous_secret_until, d.replay_id`
)

// asyncCommit lets a transaction of the delivery queue's bookkeeping
// (claims, outcomes) commit without waiting for its WAL flush. Postgres
// flushes it within a few hundred milliseconds; what a Postgres crash
// loses of it is a lease or an outcome, never a delivery (those are
// recorded durably by EnqueueDeliveries), so the delivery is sent again:
// at least once, as after a worker crash. WAL is flushed in order, so a
// later outcome is never kept while an earlier one of its stream is lost.
const asyncCommit = "SET LOCAL synchronous_commit = off"

// FinishedAttempt is one attempt's outcome: the attempt for the log and
// the delivery's new state (pending with NextAttemptAt for a retry,
// succeeded or failed). A Released one was claimed but never attempted
// (its worker stopped, or it waited too long for a free slot): it is due
// again at Attempt.StartedAt, its claim does not count as an attempt and
// nothing is logged; Attempt.Attempt is the count the claim returned,
// which fences the release against a worker whose lease ran out.
type FinishedAttempt struct {
	DeliveryID uuid.UUID
	// WebhookID and StreamID are the delivery's (ClaimedDelivery's),
	// required but for a release: the outcomes' transaction locks the
	// webhooks and moves the streams' heads by them.
	WebhookID, StreamID uuid.UUID
	Attempt             helpdeskflow.DeliveryAttempt
	Status              string
	NextAttemptAt       *time.Time
	Released            bool
}

// FinishAttempts records attempts of leased deliveries and their new
// states, and releases those never attempted, all in one transaction sent
// in one round trip, a fixed number of set-based statements however many
// there are. A delivery that is no longer pending keeps its state
// (cancelled because its webhook was deleted while the attempt was in
// flight, or finished by another worker after this one's lease ran out)
// unless the attempt succeeded; the attempt is logged either way. A
// delivery that leaves pending lets the next pending one of its (webhook,
// stream) be claimed. EValidation (nothing written) when an attempt lacks
// its WebhookID or StreamID.
func (s *Store) FinishAttempts(ctx context.Context, fs []FinishedAttempt) error {
	if len(fs) == 0 {
		return nil
	}
	var ids, hooks, streams, released []uuid.UUID
	var statuses []string
	var nexts []*time.Time
	var updated, releasedAt []time.Time
	var attempts, releasedAttempts []int32
	var urls, bodies, classes, errs []string
	var codes []*int32
	var started []time.Time
	var durations []float64
	for _, f := range fs {
		a := f.Attempt
		if f.Released {
			released, releasedAttempts, releasedAt = append(released, f.DeliveryID), append(releasedAttempts, int32(a.Attempt)), append(releasedAt, a.StartedAt)
			continue
		}
		if f.WebhookID == uuid.Nil || f.StreamID == uuid.Nil {
			return helpdeskflow.Errorf(helpdeskflow.EValidation, "finished attempt of delivery %s: webhook_id and stream_id are required", f.DeliveryID)
		}
		ids, statuses, nexts, updated = append(ids, f.DeliveryID), append(statuses, f.Status), append(nexts, f.NextAttemptAt), append(updated, a.StartedAt.Add(a.Duration))
		hooks, streams = append(hooks, f.WebhookID), append(streams, f.StreamID)
		attempts, urls, bodies, classes, errs, started = append(attempts, int32(a.Attempt)), append(urls, a.URL), append(bodies, a.ResponseBody),
			append(classes, a.ErrorClass), append(errs, a.Error), append(started, a.StartedAt)
		durations = append(durations, float64(a.Duration)/float64(time.Millisecond))
		var code *int32
		if a.StatusCode != 0 {
			c := int32(a.StatusCode)
			code = &c
		}
		codes = append(codes, code)
	}
	if len(ids) == 0 {
		// Releases change no status: no lock, no heads to move.
		rows, err := s.pool.Query(ctx, releaseDeliveries, released, releasedAttempts, releasedAt)
		var ready []readyAt
		if err == nil {
			ready, err = collectReady(rows, nil)
		}
		if err != nil {
			return pg.Internal("release deliveries", err)
		}
		s.lowerCursors(ready)
		return nil
	}
	b := beginDeliveryChange(lockWebhooks, hooks)
	b.Queue(asyncCommit)
	// Those that stay pending (retries) are claimable again at their
	// next_attempt_at.
	b.Queue(`UPDATE webhook_deliveries d SET status = u.status, next_attempt_at = u.next, leased_until = NULL, updated_at = u.updated,
			head = d.head AND u.status = 'pending'
		FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[]) AS u(id, status, next, updated)
		WHERE d.id = u.id AND (d.status = 'pending' OR u.status = 'succeeded')
		RETURNING d.webhook_id, CASE WHEN d.status = 'pending' AND d.head THEN d.next_attempt_at END`,
		ids, statuses, nexts, updated)
	b.Queue(`INSERT INTO webhook_attempts (delivery_id, attempt, url, status_code, response_body, error_class, error, started_at, duration_ms)
		SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::timestamptz[], $9::float8[])
		ON CONFLICT (delivery_id, attempt) DO NOTHING`, ids, attempts, urls, codes, bodies, classes, errs, started, durations)
	if len(released) > 0 {
		b.Queue(releaseDeliveries, released, releasedAttempts, releasedAt)
	}
	b.Queue(promoteHeadsOf, hooks, streams)
	b.Queue("commit")
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	var ready []readyAt
	var err error
	for range 3 { // begin, lock, asyncCommit
		if err == nil {
			_, err = br.Exec()
		}
	}
	if err == nil {
		ready, err = collectReady(br.Query()) // outcomes
	}
	if err == nil {
		_, err = br.Exec() // attempts
	}
	if err == nil && len(released) > 0 {
		ready, err = collectReadyInto(ready, br)
	}
	if err == nil {
		ready, err = collectReadyInto(ready, br) // promoted heads
	}
	if err == nil {
		err = br.Close() // commit
	}
	if err != nil {
		return pg.Internal("record delivery attempts", err)
	}
	s.lowerCursors(ready)
	return nil
}

// readyAt is a delivery of webhook that became claimable at at (nil: it
// did not).
type readyAt struct {
	webhook uuid.UUID
	at      *time.Time
}

// collectReady reads the (webhook_id, next_attempt_at) rows of a
// statement that made deliveries claimable.
func collectReady(rows pgx.Rows, err error) ([]readyAt, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (readyAt, error) {
		var d readyAt
		return d, r.Scan(&d.webhook, &d.at)
	})
}

// collectReadyInto appends the next batch result's rows to ready.
func collectReadyInto(ready []readyAt, br pgx.BatchResults) ([]readyAt, error) {
	more, err := collectReady(br.Query())
	return append(ready, more...), err
}

// lowerCursors moves the claim cursors back to the deliveries that a
// committed change made claimable.
func (s *Store) lowerCursors(ready []readyAt) {
	for _, d := range ready {
		if d.at != nil {
			s.cursors.lower(d.webhook, *d.at)
		}
	}
}

// releaseDeliveries undoes the claims $1 (attempt counts $2, as claimed):
// due again at $3, the claim not counted, unless the delivery has left
// pending or was claimed again since (its lease ran out).
const releaseDeliveries = `UPDATE webhook_deliveries d SET attempts = d.attempts - 1, leased_until = NULL, updated_at = r.at
	FROM unnest($1::uuid[], $2::int[], $3::timestamptz[]) AS r(id, attempt, at)
	WHERE d.id = r.id AND d.status = 'pending' AND d.attempts = r.attempt
	RETURNING d.webhook_id, CASE WHEN d.head THEN d.next_attempt_at END`

// Deliveries lists a webhook's deliveries, newest first, with their
// attempts: status filters ("" for all; a paused webhook's pending
// deliveries are listed as helpdeskflow.DeliveryHeld, and only they), before is the last delivery id
// of the previous page (uuid.Nil for the first). A deleted webhook's log
// stays readable (its pending deliveries were cancelled); ENotFound for a
// webhook the workspace never had.
func (s *Store) Deliveries(ctx context.Context, workspaceID, webhookID uuid.UUID, status string, before uuid.UUID, limit int) ([]helpdeskflow.Delivery, error) {
	var paused bool
	err := s.pool.QueryRow(ctx, `SELECT NOT active AND deleted_at IS NULL FROM webhooks WHERE id = $1 AND workspace_id = $2`,
		webhookID, workspaceID).Scan(&paused)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, helpdeskflow.Errorf(helpdeskflow.ENotFound, "webhook %s not found", webhookID)
	}
	if err != nil {
		return nil, pg.Internal("read webhook", err)
	}
	// A paused webhook's pending deliveries are held: stored pending,
	// listed (and filtered) as held.
	switch {
	case status == helpdeskflow.DeliveryHeld && paused:
		status = helpdeskflow.DeliveryPending
	case status == helpdeskflow.DeliveryHeld, status == helpdeskflow.DeliveryPending && paused:
		return []helpdeskflow.Delivery{}, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id, webhook_id, workspace_id, event_id, event_type, stream_id, stream_version, status,
			attempts, max_attempts, next_attempt_at, created_at, updated_at, coalesce(replay_id, '00000000-0000-0000-0000-000000000000')
		FROM webhook_deliveries d
		WHERE webhook_id = $1 AND workspace_id = $2 AND ($3 = '' OR status = $3)
			AND ($4 = '00000000-0000-0000-0000-000000000000'::uuid
				OR (created_at, id) < (SELECT created_at, id FROM webhook_deliveries WHERE id = $4))
		ORDER BY created_at DESC, id DESC LIMIT $5`, webhookID, workspaceID, status, before, limit)
	if err != nil {
		return nil, pg.Internal("list deliveries", err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (helpdeskflow.Delivery, error) {
		var d helpdeskflow.Delivery
		err := r.Scan(&d.ID, &d.WebhookID, &d.WorkspaceID, &d.EventID, &d.EventType, &d.StreamID, &d.StreamVersion, &d.Status,
			&d.Attempts, &d.MaxAttempts, &d.NextAttemptAt, &d.CreatedAt, &d.UpdatedAt, &d.ReplayID)
		if paused && d.Status == helpdeskflow.DeliveryPending {
			d.Status = helpdeskflow.DeliveryHeld
		}
		return d, err
	})
	if err != nil || len(ds) == 0 {
		if err != nil {
			return nil, pg.Internal("list deliveries", err)
		}
		return ds, nil
	}
	ids := make([]uuid.UUID, len(ds))
	index := map[uuid.UUID]int{}
	for i, d := range ds {
		ids[i], index[d.ID] = d.ID, i
	}
	rows, err = s.pool.Query(ctx, `SELECT delivery_id, attempt, url, coalesce(status_code, 0), response_body, error_class, error, started_at, duration_ms
		FROM webhook_attempts WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt`, ids)
	if err != nil {
		return nil, pg.Internal("list delivery attempts", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id uuid.UUID
		var a helpdeskflow.DeliveryAttempt
		var ms float64
		if err := rows.Scan(&id, &a.Attempt, &a.URL, &a.StatusCode, &a.ResponseBody, &a.ErrorClass, &a.Error, &a.StartedAt, &ms); err != nil {
			return nil, pg.Internal("list delivery attempts", err)
		}
		a.StartedAt = a.StartedAt.UTC()
		a.Duration = time.Duration(ms * float64(time.Millisecond))
		ds[index[id]].Log = append(ds[index[id]].Log, a)
	}
	if err := rows.Err(); err != nil {
		return nil, pg.Internal("list delivery attempts", err)
	}
	return ds, nil
}

// Redeliver makes a finished delivery of the webhook due at now for one
// more attempt. It touches only a delivery of that webhook in that
// workspace: ENotFound for any other (another workspace's delivery id
// included), EConflict for one that is still pending. A redelivered delivery goes before the later pending
// deliveries of its stream to its webhook (one in flight finishes).
func (s *Store) Redeliver(ctx context.Context, workspaceID, webhookID, deliveryID uuid.UUID, now time.Time) error {
	ids := []uuid.UUID{deliveryID}
	b := beginDeliveryChange(lockWebhooksOf, ids)
	b.Queue(`WITH d AS (SELECT status FROM webhook_deliveries WHERE id = $1 AND webhook_id = $2 AND workspace_id = $3 FOR UPDATE),
		u AS (UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $4, max_attempts = attempts + 1, updated_at = $4
			WHERE id = $1 AND webhook_id = $2 AND workspace_id = $3 AND status <> 'pending'
				AND EXISTS (SELECT 1 FROM webhooks WHERE id = $2 AND workspace_id = $3 AND deleted_at IS NULL) RETURNING 1)
		SELECT status FROM d`, deliveryID, webhookID, workspaceID, now)
	b.Queue(demoteLaterHeads, ids)
	endDeliveryChange(b, ids)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	var status string
	_, err := br.Exec() // begin
	if err == nil {
		_, err = br.Exec() // lock
	}
	if err == nil {
		err = br.QueryRow().Scan(&status)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return helpdeskflow.Errorf(helpdeskflow.ENotFound, "delivery %s of webhook %s not found", deliveryID, webhookID)
	}
	if err == nil {
		err = br.Close()
	}
	if err != nil {
		return pg.Internal("redeliver", err)
	}
	if status == helpdeskflow.DeliveryPending {
		return helpdeskflow.Errorf(helpdeskflow.EConflict, "delivery %s is still pending; it is retried on its schedule", deliveryID)
	}
	s.cursors.lower(webhookID, now)
	return nil
}

// DeliveryQueue reports the pending deliveries and the age of the oldest
// at now, for the queue metrics.
func (s *Store) DeliveryQueue(ctx context.Context, now time.Time) (pending int64, oldest time.Duration, err error) {
	var first *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT count(*), min(created_at) FROM webhook_deliveries WHERE status = 'pending'`).Scan(&pending, &first); err != nil {
		return 0, 0, pg.Internal("read delivery queue", err)
	}
	if first != nil {
		oldest = now.Sub(*first)
	}
	return pending, oldest, nil
}

// DroppedDeliveries returns how many deliveries have been dropped from
// paused webhooks over their held cap, all webhooks together (deleted ones
// too, so the total never goes down), for the metric. Errors are
// EInternal.
func (s *Store) DroppedDeliveries(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(dropped_deliveries), 0)::bigint FROM webhooks`).Scan(&n); err != nil {
		return 0, pg.Internal("count dropped deliveries", err)
	}
	return n, nil
}

// PurgeDeliveries deletes up to limit of the oldest finished deliveries
// (succeeded, failed or cancelled) created and last updated before
// before, with their attempts, in one statement, and reports how many
// deliveries and attempts it deleted. A pending delivery is never deleted,
// so no stream's head or claim is touched; neither is a row another
// transaction holds (a redelivery, a late outcome): it is skipped, not
// waited for. A deleted delivery can no longer be listed or redelivered.
// It uses the index webhook_deliveries_finished (migration 0025). It
// returns EInternal (EUnavailable when Postgres cannot be reached) on a
// database error.
func (s *Store) PurgeDeliveries(ctx context.Context, before time.Time, limit int) (deliveries, attempts int64, err error) {
	// The batch is a CTE, run once: as an IN (subquery) a plan may run
	// the subquery again per row and delete more than limit.
	err = s.pool.QueryRow(ctx, `WITH batch AS (
			SELECT id FROM webhook_deliveries
			WHERE status <> 'pending' AND created_at < $1 AND updated_at < $1
			ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED),
		gone AS (
			DELETE FROM webhook_deliveries d USING batch WHERE d.id = batch.id AND d.status <> 'pending'
			RETURNING d.id),
		logged AS (DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT id FROM gone) RETURNING 1)
		SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM logged)`, before, limit).Scan(&deliveries, &attempts)
	if err != nil {
		return 0, 0, pg.Internal("purge finished webhook deliveries", err)
	}
	return deliveries, attempts, nil
}
