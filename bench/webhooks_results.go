package main

// webhooksResult is the webhooks phase as results.json shows it.
type webhooksResult struct {
	Deliveries   int     `json:"deliveries_per_pipeline_round"`
	Webhooks     int     `json:"webhooks"`
	Concurrency  int     `json:"concurrency"`
	PerWebhook   int     `json:"per_webhook"`
	Prefetch     int     `json:"prefetch"`
	BodyBytesAvg int     `json:"body_bytes_avg"`
	RoundOrder   string  `json:"round_order"`
	PlainMinSecs float64 `json:"plain_min_seconds_per_round"`
	Database     string  `json:"postgres_database"`
	Receiver     string  `json:"receiver"`

	Plain       hookSide `json:"plain_client"`
	Pipeline    hookSide `json:"pipeline"`
	Ratio       float64  `json:"ratio_per_second"` // Pipeline ÷ Plain
	TargetRatio float64  `json:"target_ratio"`
	TargetMet   bool     `json:"target_met"`

	SignaturesVerified int64       `json:"signatures_verified"`
	SignatureFailures  int64       `json:"signature_failures"`
	FirstSignatureErr  string      `json:"first_signature_error,omitempty"`
	Rounds             []hookRound `json:"rounds"`
}

// hookSide is one side of the comparison: its rounds together.
type hookSide struct {
	Rounds    int     `json:"rounds"`
	Requests  int64   `json:"requests"` // plain: 2xx answers; pipeline: deliveries succeeded
	Errors    int64   `json:"errors"`   // plain: failed requests; pipeline: deliveries not succeeded
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	// LatencyMs is, for the plain client, each request's time; for the
	// pipeline, each attempt's Duration as the worker recorded it
	// (webhook_attempts.duration_ms): the same POST seen from the sender.
	LatencyMs         latencySummary `json:"latency_ms"`
	ReceiverGapMs     latencySummary `json:"receiver_inter_arrival_ms"`
	CPUPerDeliveryMs  cpuPerOp       `json:"cpu_ms_per_delivery"`
	ConnectionsOpened int64          `json:"connections_opened"`
}

// hookRound is one round: the plain client, or N fresh deliveries through
// the pipeline.
type hookRound struct {
	Pipeline          bool           `json:"pipeline"`
	Requests          int64          `json:"requests"`
	Errors            int64          `json:"errors"`
	FirstError        string         `json:"first_error,omitempty"`
	Seconds           float64        `json:"seconds"`
	PerSecond         float64        `json:"per_second"`
	LatencyMs         latencySummary `json:"latency_ms"`
	ReceiverRequests  int64          `json:"receiver_requests"`
	ReceiverGapMs     latencySummary `json:"receiver_inter_arrival_ms"`
	ConnectionsOpened int64          `json:"connections_opened"`
	CPU               cpuSplit       `json:"cpu"`

	// The pipeline only.
	EnqueueSeconds      float64          `json:"enqueue_seconds,omitempty"`
	FirstArrivalSeconds float64          `json:"first_arrival_seconds,omitempty"` // worker start → first request at the receiver
	LastArrivalSeconds  float64          `json:"last_arrival_seconds,omitempty"`  // worker start → last request at the receiver
	Statuses            map[string]int64 `json:"statuses,omitempty"`
	Attempts            int64            `json:"attempts,omitempty"`
	ErrorClasses        map[string]int64 `json:"error_classes,omitempty"`
	TimedOut            bool             `json:"timed_out,omitempty"`
	// The worker's calls to the queue (timed around pollers.DeliveryStore):
	// how many claims, deliveries per claim, and how long each call took.
	Claims             int64           `json:"claims,omitempty"`
	EmptyClaims        int64           `json:"empty_claims,omitempty"`
	DeliveriesPerClaim float64         `json:"deliveries_per_claim,omitempty"`
	OutcomesPerBatch   float64         `json:"outcomes_per_batch,omitempty"`
	ClaimMs            *latencySummary `json:"claim_ms,omitempty"`
	FinishMs           *latencySummary `json:"finish_attempt_ms,omitempty"`
	CommitsPerDelivery float64         `json:"postgres_commits_per_delivery,omitempty"`
	TuplesPerDelivery  float64         `json:"postgres_tuples_returned_per_delivery,omitempty"`
	PostgresActivity   *pgActivity     `json:"postgres_activity,omitempty"`
	PostgresError      string          `json:"postgres_error,omitempty"`
}
