// Package ratelimit enforces the API's rate limits in memory: per API key and
// per category (helpdeskflow.RateLimitCategories), each pair its own bucket,
// with a sliding window whose count decreases gradually instead of resetting
// at a window boundary, an exact Retry-After, and a per-workspace
// soft-throttle mode for workspaces whose keys keep exceeding their limits.
// With Config.Shared the API processes exchange their counts and denial
// streaks every 100 ms, so limits and soft throttle hold across them.
//
// # Algorithm
//
// A bucket splits its window W into 60 slots of width g = W/60 (rounded up
// to a whole nanosecond, so 60 slots cover at least W; g is at least 16.7 ms
// for the smallest window of one second). Slot k holds the requests admitted
// in [k·g, (k+1)·g), counted from the Limiter's creation. A request at time t
// counts every admitted request in the slots that overlap [t−W, t], the
// oldest of them whole, which is every admitted request in [t−W, t] and
// possibly some in (t−W−g, t−W); it is admitted iff that count is below the
// limit. Denied requests are not counted.
//
// Guarantee: no closed interval of length W, anywhere in time, holds more
// than Limit admitted requests. Proof: let t be the last admission inside
// such an interval; every other admission inside it lies in [t−W, t] and so
// was counted at t, and that count was below Limit, so the interval holds at
// most Limit. (When a workspace lowers its limit the guarantee holds for the
// limit in force at each admission; when it changes the window the bucket
// starts empty, see Limiter.Allow.) The price of counting the oldest slot
// whole is that an admitted request stays counted for between W and W+g
// instead of exactly W, so a key is sure of Limit requests per W+g (about
// 1.7 % more than W), not per W.
//
// A bucket keeps 61 counters (the 60 slots of the window and the partial
// oldest one) and their running sum, so its memory is fixed and a call does
// constant work: expiring the slots that time left behind (at most 61), and
// on a denial a scan of at most 61 counters to compute the exact RetryAfter.
//
// # Several processes
//
// Every request is decided in memory. With Config.Shared, Run makes an
// exchange every SyncEvery (P, 100 ms by default): the process sends the
// counts of its slots that changed and receives, for every bucket it
// holds, the other processes' counts per slot, which then count with its
// own (in Allow, Usage, RetryAfter and Reset alike) and expire with their
// slots. Slots are counted from Config.Origin (the Unix epoch), so every
// process's slot k is the same interval, up to the clocks' difference.
//
// Bound: an admission on process p at t counts every admission of p and
// every other process's admission that was exchanged before p's last
// exchange; another process's admission at a is exchanged by a+P (plus
// the exchange's duration d) and p takes it in at its next exchange, by
// a+2P+d. So the argument of the guarantee above gives: no interval of
// length W holds more than Limit plus what the other processes admitted
// in the 2P+d (about 200 ms) before its last admission. A process that
// serves a key for the first time (or after its bucket was swept) knows
// the others' counts from its next exchange, within P, and so does a
// process whose exchanges fail (Postgres unreachable): it limits with its
// own counts and the others' last known ones, which expire with their
// slots, and counts each failure in
// helpdeskflow_rate_limit_sync_failures_total.
//
// Soft throttle follows the workspace: a denial of any of its keys, on
// any process, extends its streak. Each process exchanges its own streak
// (first and latest denial) per workspace; the workspace's streak is the
// run of the processes' streaks each starting at most StreakGap after the
// previous ended, so every process puts the workspace in the mode, and
// takes it out, within an exchange of the others. Without Config.Shared
// state is per process. A restart forgets this process's counts and
// streaks; what it exchanged counts on the other processes until it
// expires.
package ratelimit
