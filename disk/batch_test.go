package disk

import (
	"fmt"
	"sync"
	"testing"
)

// TestBatchGroupCommit: concurrent writers of one Store share commits, and
// every write lands.
func TestBatchGroupCommit(t *testing.T) {
	t.Parallel()
	s := newTestStore(t, Options{MinFileSize: 2048})
	const workers, each = 8, 100
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				k := fmt.Sprintf("%d/%d", w, i)
				val := []byte(k)
				if i%10 == 0 {
					val = append(make([]byte, 4096), k...) // some values in files
				}
				if err := s.Set(bg, k, val, 0); err != nil {
					t.Error(err)
					return
				}
				if i%4 == 0 {
					if n, err := s.Delete(bg, k); n != 1 || err != nil {
						t.Errorf("Delete(%s) = %d, %v", k, n, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for w := range workers {
		for i := range each {
			k := fmt.Sprintf("%d/%d", w, i)
			v, err := s.Get(bg, k)
			if i%4 == 0 {
				if err == nil {
					t.Fatalf("%s: deleted, but Get found it", k)
				}
				continue
			}
			if err != nil || string(v[len(v)-len(k):]) != k {
				t.Fatalf("Get(%s) = %q, %v", k, v, err)
			}
		}
	}
	commits, writes := s.batch.commits.Load(), s.batch.writes.Load()
	t.Logf("%d writes in %d commits", writes, commits)
	if writes != workers*each*5/4 || commits >= writes {
		t.Fatalf("%d writes in %d commits: want %d writes sharing commits", writes, commits, workers*each*5/4)
	}
	if rep, err := s.Check(bg, false); err != nil || !rep.OK() {
		t.Fatalf("Check: %v %v", rep.Problems, err)
	}
}
