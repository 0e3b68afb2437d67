package queues

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/helpdeskflow/helpdeskflow"
	"github.com/helpdeskflow/helpdeskflow/store/pg"
)

// EnqueueJobs queues integration jobs, due at their CreatedAt, in one
// statement; a job of an (event, kind, connection) already queued is left
// alone (a Kafka redelivery).
func (s *Store) EnqueueJobs(ctx context.Context, jobs []helpdeskflow.IntegrationJob) error {
	if len(jobs) == 0 {
		return nil
	}
	n := len(jobs)
	ids, workspaces, connections, events := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n)
	kinds, payloads, created := make([]string, n), make([]string, n), make([]time.Time, n)
	for i, j := range jobs {
		ids[i], workspaces[i], connections[i], events[i] = j.ID, j.WorkspaceID, j.ConnectionID, j.EventID
		kinds[i], payloads[i], created[i] = j.Kind, string(j.Payload), j.CreatedAt
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO integration_jobs (id, workspace_id, connection_id, kind, event_id, payload, next_attempt_at, created_at, updated_at)
		SELECT id, ws, conn, kind, event, payload::jsonb, created, created, created
		FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::uuid[], $6::text[], $7::timestamptz[])
			AS u(id, ws, conn, kind, event, payload, created)
		ON CONFLICT (event_id, kind, connection_id) DO NOTHING`,
		ids, workspaces, connections, kinds, events, payloads, created)
	if err != nil {
		return pg.Internal("enqueue integration jobs", err)
	}
	return nil
}

// ClaimJobs leases up to limit jobs due at now for one run each (attempts
// counts it; the returned jobs' Attempt is the new count): a leased job's
// next_attempt_at moves to now+lease, so it is out of the due range while
// it runs and due again if its worker dies. It takes at most
// perConnection jobs of one connection minus what inFlight says this
// worker already runs there, the earliest due first. Rows other workers
// hold are skipped, so many workers share the queue.
//
// Only claimable rows are looked at: the query walks the connections that
// have pending jobs (one index probe each) and takes each one's earliest
// due jobs, so a connection with a long backlog, hung or not, costs the
// claim one probe and never hides another connection's jobs.
func (s *Store) ClaimJobs(ctx context.Context, now time.Time, limit, perConnection int, inFlight map[uuid.UUID]int, lease time.Duration) ([]helpdeskflow.IntegrationJob, error) {
	busyIDs, busyN := make([]uuid.UUID, 0, len(inFlight)), make([]int32, 0, len(inFlight))
	for id, n := range inFlight {
		busyIDs, busyN = append(busyIDs, id), append(busyN, int32(n))
	}
	rows, err := s.pool.Query(ctx, `WITH RECURSIVE conns(id) AS (
			(SELECT connection_id FROM integration_jobs WHERE status = 'pending' ORDER BY connection_id LIMIT 1)
			UNION ALL
			SELECT (SELECT j.connection_id FROM integration_jobs j WHERE j.status = 'pending' AND j.connection_id > c.id
				ORDER BY j.connection_id LIMIT 1)
			FROM conns c WHERE c.id IS NOT NULL
		), room AS (
			SELECT c.id, $3::int - coalesce(b.n, 0) AS n
			FROM conns c LEFT JOIN unnest($4::uuid[], $5::int[]) AS b(id, n) ON b.id = c.id
			WHERE c.id IS NOT NULL
		), candidates AS (
			SELECT j.id, j.next_attempt_at FROM room r
			CROSS JOIN LATERAL (SELECT id, next_attempt_at FROM integration_jobs
				WHERE connection_id = r.id AND status = 'pending' AND next_attempt_at <= $1
				ORDER BY next_attempt_at LIMIT greatest(r.n, 0)) j
			ORDER BY j.next_attempt_at LIMIT $2
		), due AS (
			SELECT j.id FROM integration_jobs j JOIN candidates c ON c.id = j.id
			WHERE j.status = 'pending' AND j.next_attempt_at <= $1
			FOR UPDATE OF j SKIP LOCKED
		)
		UPDATE integration_jobs j SET next_attempt_at = $1::timestamptz + $6::interval, attempts = j.attempts + 1, updated_at = $1
		FROM due WHERE j.id = due.id
		RETURNING j.id, j.workspace_id, j.connection_id, j.kind, j.event_id, j.payload, j.attempts, j.created_at`,
		now, limit, perConnection, busyIDs, busyN, lease)
	if err != nil {
		return nil, pg.Internal("claim integration jobs", err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (helpdeskflow.IntegrationJob, error) {
		var j helpdeskflow.IntegrationJob
		err := r.Scan(&j.ID, &j.WorkspaceID, &j.ConnectionID, &j.Kind, &j.EventID, &j.Payload, &j.Attempt, &j.CreatedAt)
		j.CreatedAt = j.CreatedAt.UTC()
		return j, err
	})
	if err != nil {
		return nil, pg.Internal("claim integration jobs", err)
	}
	return jobs, nil
}

// FinishedJob is the end of one run of a leased job: done or failed for
// good, pending again with NextAttemptAt for a retry, or Released (the
// worker stopped before the run ended: due again at At, and the run does
// not count as an attempt). ErrorClass and Error describe a failed run
// (also one that is retried); Attempt is the job's attempt count as
// claimed, which fences the write against a worker whose lease ran out.
type FinishedJob struct {
	ID            uuid.UUID
	Attempt       int
	Status        string
	Outcome       string
	NextAttemptAt *time.Time
	ErrorClass    string
	Error         string
	At            time.Time
	Released      bool
}

// FinishJobs records the ends of runs in one statement. A job claimed
// again since (its lease ran out, so its attempts moved on) is left to its
// new run.
func (s *Store) FinishJobs(ctx context.Context, fs []FinishedJob) error {
	if len(fs) == 0 {
		return nil
	}
	n := len(fs)
	ids, attempts, statuses, outcomes := make([]uuid.UUID, n), make([]int32, n), make([]string, n), make([]string, n)
	nexts, classes, errs, at, released := make([]*time.Time, n), make([]string, n), make([]string, n), make([]time.Time, n), make([]bool, n)
	for i, f := range fs {
		ids[i], attempts[i], statuses[i], outcomes[i] = f.ID, int32(f.Attempt), f.Status, f.Outcome
		nexts[i], classes[i], errs[i], at[i], released[i] = f.NextAttemptAt, f.ErrorClass, f.Error, f.At, f.Released
		if f.Released {
			nexts[i] = &at[i]
		}
	}
	_, err := s.pool.Exec(ctx, `UPDATE integration_jobs j SET status = u.status, outcome = u.outcome,
			next_attempt_at = coalesce(u.next, j.next_attempt_at), attempts = j.attempts - u.released::int,
			last_error = CASE WHEN u.class <> '' THEN u.error ELSE j.last_error END,
			last_error_class = CASE WHEN u.class <> '' THEN u.class ELSE j.last_error_class END,
			last_error_at = CASE WHEN u.class <> '' THEN u.at ELSE j.last_error_at END,
			updated_at = u.at
		FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[], $8::timestamptz[], $9::bool[])
			AS u(id, attempt, status, outcome, next, class, error, at, released)
		WHERE j.id = u.id AND j.attempts = u.attempt AND j.status = 'pending'`,
		ids, attempts, statuses, outcomes, nexts, classes, errs, at, released)
	if err != nil {
		return pg.Internal("finish integration jobs", err)
	}
	return nil
}

// JobQueueStat is the pending jobs of one kind: how many, and the age of
// the oldest at the time asked.
type JobQueueStat struct {
	Kind    string
	Pending int64
	Oldest  time.Duration
}

// JobQueue reports the pending jobs per kind at now, for the queue
// metrics.
func (s *Store) JobQueue(ctx context.Context, now time.Time) ([]JobQueueStat, error) {
	rows, err := s.pool.Query(ctx, `SELECT kind, count(*), min(created_at) FROM integration_jobs WHERE status = 'pending' GROUP BY kind`)
	if err != nil {
		return nil, pg.Internal("read integration job queue", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (JobQueueStat, error) {
		var st JobQueueStat
		var first time.Time
		err := r.Scan(&st.Kind, &st.Pending, &first)
		st.Oldest = now.Sub(first)
		return st, err
	})
	if err != nil {
		return nil, pg.Internal("read integration job queue", err)
	}
	return out, nil
}

// IntegrationQueues returns the job queue of each of the workspace's
// connections in ids (for Slack, the workspace id) at now; a connection
// without jobs has a zero IntegrationQueue.
func (s *Store) IntegrationQueues(ctx context.Context, workspaceID uuid.UUID, ids []uuid.UUID, now time.Time) (map[uuid.UUID]helpdeskflow.IntegrationQueue, error) {
	out := make(map[uuid.UUID]helpdeskflow.IntegrationQueue, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT connection_id, count(*), min(created_at) FROM integration_jobs
		WHERE connection_id = ANY($1) AND workspace_id = $2 AND status = 'pending' GROUP BY connection_id`, ids, workspaceID).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id uuid.UUID
				var n int
				var first time.Time
				if err := rows.Scan(&id, &n, &first); err != nil {
					return err
				}
				q := out[id]
				first = first.UTC()
				q.Pending, q.OldestPendingAt = n, &first
				out[id] = q
			}
			return rows.Err()
		})
	b.Queue(`SELECT connection_id, count(*) FROM integration_jobs
		WHERE connection_id = ANY($1) AND workspace_id = $2 AND last_error_at > $3 AND status = 'failed' GROUP BY connection_id`,
		ids, workspaceID, now.Add(-24*time.Hour)).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id uuid.UUID
				var n int
				if err := rows.Scan(&id, &n); err != nil {
					return err
				}
				q := out[id]
				q.FailedLast24h = n
				out[id] = q
			}
			return rows.Err()
		})
	b.Queue(`SELECT DISTINCT ON (connection_id) connection_id, last_error_at, kind, last_error_class, last_error, status = 'failed'
		FROM integration_jobs WHERE connection_id = ANY($1) AND workspace_id = $2 AND last_error_at IS NOT NULL
		ORDER BY connection_id, last_error_at DESC`, ids, workspaceID).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id uuid.UUID
				var f helpdeskflow.JobFailure
				if err := rows.Scan(&id, &f.At, &f.Kind, &f.ErrorClass, &f.Error, &f.Final); err != nil {
					return err
				}
				f.At = f.At.UTC()
				q := out[id]
				q.LastFailure = &f
				out[id] = q
			}
			return rows.Err()
		})
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return nil, pg.Internal("read integration queues", err)
	}
	return out, nil
}

// PurgeJobs deletes up to limit jobs that finished (done or failed)
// before before, and reports how many it deleted.
func (s *Store) PurgeJobs(ctx context.Context, before time.Time, limit int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM integration_jobs WHERE id IN (
		SELECT id FROM integration_jobs WHERE status <> 'pending' AND updated_at < $1 ORDER BY updated_at LIMIT $2)`, before, limit)
	if err != nil {
		return 0, pg.Internal("purge integration jobs", err)
	}
	return tag.RowsAffected(), nil
}
