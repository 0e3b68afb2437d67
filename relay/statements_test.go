package relay_test

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/helpdeskflow/helpdeskflow/internal/testenv"
	"github.com/helpdeskflow/helpdeskflow/relay"
)

// Under a stream of concurrent commits the relay sends, per batch it
// publishes, one read and one checkpoint write, and measures its lag on
// its own clock (LagInterval, here an hour), never per read: an empty read
// (the commits it was woken for are held back by the commit horizon, or
// were read already) costs that read and one look for held-back events.
func TestRelay_StatementsPerPublishedBatch(t *testing.T) {
	db, statements := testenv.CountingPostgres(t)
	s := testenv.StoreOn(t, db)
	_, brokers := testenv.Kafka(t)
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	r, err := relay.New(s, client, relay.Config{PollInterval: time.Hour, RetryBackoff: 50 * time.Millisecond, LagInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	testenv.Run(t, r.Run)
	appendTickets(t, s, 1)
	consumeAll(t, brokers, 1) // the relay leads and listens
	statements.Reset()
	const writers, commits = 8, 40
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() { appendTickets(t, s, commits) })
	}
	wg.Wait()
	if got := len(consumeAll(t, brokers, 1+writers*commits)); got != 1+writers*commits {
		t.Fatalf("published %d events, want %d", got, 1+writers*commits)
	}
	var checkpoints, reads, held, lag int
	var relays []string
	for sql, n := range statements.BySQL() {
		switch {
		case strings.Contains(sql, "INSERT INTO relay_checkpoints"):
			checkpoints += n
		case strings.Contains(sql, "max(tx_id)"):
			held += n
		case strings.Contains(sql, "pg_snapshot_xmin"):
			reads += n
		case strings.Contains(sql, "min(occurred_at)"), strings.Contains(sql, "pg_stat_activity"):
			lag += n
		default:
			continue
		}
		relays = append(relays, fmt.Sprintf("%d× %s", n, strings.Join(strings.Fields(sql), " ")))
	}
	sort.Strings(relays)
	t.Logf("%d batches published: %d reads, %d checkpoint writes, %d looks for held-back events, %d lag queries", checkpoints, reads, checkpoints, held, lag)
	if checkpoints == 0 || lag > 0 || checkpoints+held > reads {
		t.Fatalf("the relay published %d batches in %d reads; want no lag query in the publishing loop and one checkpoint write per published batch or look for held-back events per empty read:\n%s",
			checkpoints, reads, strings.Join(relays, "\n"))
	}
}
