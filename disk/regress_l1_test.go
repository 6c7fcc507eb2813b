package disk

import (
	"bytes"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type hookClock struct {
	armed atomic.Bool
	hit   chan struct{}
}

func (c *hookClock) Now() time.Time {
	if c.armed.CompareAndSwap(true, false) {
		close(c.hit)
	}
	return time.Now()
}

// A withTx writer (SetMany) publishes its L1 "sets" after unlinking files,
// outside any ordering with batched writers: a Set that commits later but
// publishes earlier is overwritten in the L1 by the older value.
func TestRegressionL1StaleAfterSetManyVsSet(t *testing.T) {
	clk := &hookClock{}
	s := newTestStore(t, Options{L1Size: 1 << 20, MinFileSize: 64, CullLimit: -1, Clock: clk})
	big := bytes.Repeat([]byte("x"), 100)
	for round := range 5 {
		items := map[string][]byte{"K": []byte("A")}
		for i := range 300 {
			k := fmt.Sprintf("f%d", i)
			if err := s.Set(bg, k, big, 0); err != nil { // value files, unlinked by SetMany after commit
				t.Fatal(err)
			}
			items[k] = []byte("small")
		}
		clk.hit = make(chan struct{})
		clk.armed.Store(true)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-clk.hit // SetMany's transaction is open
			if err := s.Set(bg, "K", []byte("B"), 0); err != nil {
				t.Error(err)
			}
		}()
		if err := s.SetMany(bg, items, 0); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		var db []byte
		if err := s.db.QueryRow(`SELECT value FROM cache WHERE key = 'K'`).Scan(&db); err != nil && err != sql.ErrNoRows {
			t.Fatal(err)
		}
		got, err := s.Get(bg, "K")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, db) {
			t.Fatalf("round %d: Get (L1) = %q but SQLite holds %q", round, got, db)
		}
	}
}
