// Package ratelimit enforces the API's rate limits in memory: per API key and
// per category (helpdeskflow.RateLimitCategories), each pair its own bucket,
// with a sliding window whose count decreases gradually instead of resetting
// at a window boundary, an exact Retry-After, and a per-key soft-throttle mode
// for keys that keep exceeding their limits.
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
// # Deployment
//
// State is per process. A deployment with several API nodes must either route
// every request of one key to the same node (consistent hashing on the key id
// at the load balancer), or give each node the limit divided by the node
// count, or move the counters to a shared store; otherwise a key gets up to
// its limit on every node. A restart forgets every count and streak.
package ratelimit
