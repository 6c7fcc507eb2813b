package flight

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestDoCoalesces(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var g Group[string, int]
		var runs atomic.Int32
		release := make(chan struct{})
		var wg sync.WaitGroup
		results := make([]int, 10)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err, _ := g.Do(context.Background(), "k", 0, func(context.Context) (int, error) {
					runs.Add(1)
					<-release
					return 42, nil
				})
				if err != nil {
					t.Errorf("Do: %v", err)
				}
				results[i] = v
			}()
		}
		synctest.Wait() // every caller is now blocked: in the load or waiting for it
		close(release)
		wg.Wait()
		if got := runs.Load(); got != 1 {
			t.Fatalf("loader ran %d times, want 1", got)
		}
		for i, v := range results {
			if v != 42 {
				t.Errorf("caller %d got %d, want 42", i, v)
			}
		}
	})
}

func TestDoWithDoneContextStartsNothing(t *testing.T) {
	t.Parallel()
	var g Group[string, int]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	_, err, _ := g.Do(ctx, "k", 0, func(context.Context) (int, error) { ran = true; return 1, nil })
	g.Wait()
	if !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("Do with a done context: err=%v ran=%v; want context.Canceled and no load", err, ran)
	}
}

func TestDoPanicBecomesErrorForEveryWaiter(t *testing.T) {
	t.Parallel()
	var g Group[int, int]
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i], _ = g.Do(context.Background(), 1, 0, func(context.Context) (int, error) {
				<-start
				panic("boom")
			})
		}()
	}
	time.Sleep(10 * time.Millisecond) // let waiters join; correctness does not depend on it
	close(start)
	wg.Wait()
	for i, err := range errs {
		var pe *PanicError
		if !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
			t.Errorf("caller %d: got %v, want a PanicError carrying \"boom\" and a stack", i, err)
		}
	}
}

func TestCallerCancelDoesNotCancelLoad(t *testing.T) {
	t.Parallel()
	var g Group[string, string]
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	finish := make(chan struct{})
	loadErr := make(chan error, 1)
	go func() {
		_, err, _ := g.Do(ctx, "k", time.Minute, func(lctx context.Context) (string, error) {
			close(started)
			<-finish
			loadErr <- lctx.Err()
			return "v", nil
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled caller got %v, want context.Canceled", err)
		}
	}()
	<-started
	cancel()
	// A second caller joins the same load and gets its value.
	done := make(chan string)
	go func() {
		v, err, shared := g.Do(context.Background(), "k", time.Minute, func(context.Context) (string, error) {
			return "second load", nil
		})
		if err != nil || !shared {
			t.Errorf("second caller: err=%v shared=%v, want nil, true", err, shared)
		}
		done <- v
	}()
	time.Sleep(10 * time.Millisecond)
	close(finish)
	if v := <-done; v != "v" {
		t.Fatalf("second caller got %q, want %q", v, "v")
	}
	if err := <-loadErr; err != nil {
		t.Fatalf("load context ended early: %v", err)
	}
	g.Wait()
}

func TestTimeoutBoundsLoad(t *testing.T) {
	t.Parallel()
	var g Group[string, int]
	_, err, _ := g.Do(context.Background(), "k", 5*time.Millisecond, func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
}

func TestForgetStartsFreshLoad(t *testing.T) {
	t.Parallel()
	var g Group[string, int]
	block := make(chan struct{})
	first := make(chan int)
	go func() {
		v, _, _ := g.Do(context.Background(), "k", 0, func(context.Context) (int, error) {
			<-block
			return 1, nil
		})
		first <- v
	}()
	for {
		g.mu.Lock()
		n := len(g.calls)
		g.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	g.Forget("k")
	v, _, shared := g.Do(context.Background(), "k", 0, func(context.Context) (int, error) { return 2, nil })
	if v != 2 || shared {
		t.Fatalf("after Forget got %d shared=%v, want 2 from a fresh load", v, shared)
	}
	close(block)
	if v := <-first; v != 1 {
		t.Fatalf("first caller got %d, want 1", v)
	}
	g.Wait()
	if len(g.calls) != 0 {
		t.Fatalf("calls left behind: %d", len(g.calls))
	}
}
