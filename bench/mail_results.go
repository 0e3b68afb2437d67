package main

// mailResult is the mail phase as results.json shows it.
type mailResult struct {
	Messages       int     `json:"messages"`
	Threads        int     `json:"threads"`
	Customers      int     `json:"customers"`
	Multipart      int     `json:"multipart_alternative"`
	EncodedWords   int     `json:"with_rfc2047_encoded_words"`
	QuotingReplies int     `json:"replies_quoting_history"`
	RawBytesAvg    int     `json:"raw_bytes_avg"`
	BuildSeconds   float64 `json:"mailbox_build_seconds"`
	RoundOrder     string  `json:"round_order"`
	Database       string  `json:"postgres_database"`
	PoolConns      int     `json:"pool_connections"`
	Gmail          string  `json:"gmail"`

	Baseline mailSide `json:"baseline"`
	Pipeline mailSide `json:"pipeline"`
	Ratio    float64  `json:"ratio_per_second"` // Pipeline ÷ Baseline
	Valid    bool     `json:"valid"`

	// ParseOnly is mail.Parse of every raw message, as the baseline rounds
	// do before they are timed; FetchParse is a gmail.Client listing the
	// mailbox and fetching and parsing every message, sequentially, once.
	ParseOnly  mailRate       `json:"parse_only"`
	FetchParse mailFetchParse `json:"fetch_and_parse"`
	Rounds     []mailRound    `json:"rounds"`
	Note       string         `json:"note"`
}

// mailSide is one side of the comparison: its rounds together.
type mailSide struct {
	Rounds            int      `json:"rounds"`
	Messages          int64    `json:"messages"`
	Seconds           float64  `json:"seconds"`
	PerSecond         float64  `json:"per_second"` // Messages ÷ Seconds
	CommitsPerMessage float64  `json:"postgres_commits_per_message"`
	TuplesPerMessage  float64  `json:"postgres_tuples_fetched_per_message"`
	CPUPerMessageMs   cpuPerOp `json:"cpu_ms_per_message"`
}

// mailRate is a count over a time.
type mailRate struct {
	Messages  int64   `json:"messages"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
}

// mailFetchParse is the fetch+parse measurement: where the pipeline's time
// goes outside Postgres.
type mailFetchParse struct {
	mailRate
	ListSeconds  float64 `json:"list_seconds"`
	GetSeconds   float64 `json:"get_seconds"`
	ParseSeconds float64 `json:"parse_seconds"`
	Bytes        int64   `json:"raw_bytes"`
	Error        string  `json:"error,omitempty"`
}

// mailRound is one round: the pipeline's sync of a fresh connection, or the
// baseline's commands, each in a fresh workspace.
type mailRound struct {
	Pipeline  bool     `json:"pipeline"`
	Workspace string   `json:"workspace"`
	Messages  int64    `json:"messages"` // imported, as the checks afterwards found them
	Seconds   float64  `json:"seconds"`
	PerSecond float64  `json:"per_second"`
	Valid     bool     `json:"valid"`
	Problems  []string `json:"problems,omitempty"`
	CPU       cpuSplit `json:"cpu"`

	// What Postgres holds afterwards.
	TicketsCreated int64 `json:"ticket_created_events"`
	MessagesAdded  int64 `json:"message_added_events"`

	// pg_stat_database of the phase's database over the round (the
	// round's pool is closed before the second reading, so its backends
	// have flushed their counters).
	Postgres          pgDBStats `json:"pg_stat_database_delta"`
	CommitsPerMessage float64   `json:"postgres_commits_per_message"`
	TuplesPerMessage  float64   `json:"postgres_tuples_fetched_per_message"`
	PostgresError     string    `json:"postgres_error,omitempty"`

	// The baseline only.
	ParseSeconds      float64 `json:"parse_seconds_before_timing,omitempty"`
	CreateSeconds     float64 `json:"create_ticket_seconds,omitempty"`
	AddMessageSeconds float64 `json:"add_message_seconds,omitempty"`
	Errors            int64   `json:"errors,omitempty"`
	FirstError        string  `json:"first_error,omitempty"`

	// The pipeline only.
	Connection      string         `json:"connection,omitempty"`
	Synced          int            `json:"mailboxes_synced,omitempty"`
	MailRecords     int64          `json:"mail_records_with_ticket,omitempty"`
	SkippedRecords  int64          `json:"mail_records_skipped,omitempty"`
	DistinctTickets int64          `json:"distinct_tickets,omitempty"`
	Imported        map[string]int `json:"imported,omitempty"` // ImportMail results: ticket, message, duplicate, skipped, error
	GmailRequests   map[string]int `json:"gmail_requests,omitempty"`
	// Time inside the pipeline's calls, timed around the worker's
	// dependencies: ImportMail (its Postgres transaction, sanitizing,
	// automations), the OAuth token (a Postgres transaction per Gmail
	// request) and the sync's own store calls (claim, dedupe lookups,
	// lease extensions, finish). The rest is the worker's own: Gmail
	// requests, mail.Parse, convert.
	ImportSeconds float64 `json:"import_mail_seconds,omitempty"`
	// ImportMs is each ImportMail call's time; its mean over the first
	// and the last tenth of the mailbox shows whether an import costs more
	// as the mailbox's records grow.
	ImportMs           *latencySummary `json:"import_mail_ms,omitempty"`
	ImportFirstTenthMs float64         `json:"import_mail_mean_ms_first_tenth,omitempty"`
	ImportLastTenthMs  float64         `json:"import_mail_mean_ms_last_tenth,omitempty"`
	TokenSeconds       float64         `json:"access_token_seconds,omitempty"`
	TokenCalls         int             `json:"access_token_calls,omitempty"`
	StoreSeconds       float64         `json:"sync_store_seconds,omitempty"`
	StoreCalls         int             `json:"sync_store_calls,omitempty"`
	OtherSeconds       float64         `json:"fetch_parse_convert_seconds,omitempty"`
	LastError          string          `json:"connection_last_error,omitempty"`
}
