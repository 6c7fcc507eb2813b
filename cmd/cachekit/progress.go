package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"
)

// progress draws one line of progress on a terminal, redrawn in place:
// a bar when the amount of work is known, a spinner with the elapsed time
// (and the count done, if any) when it is not. A few lines of our own: a progress library would
// bring more than this needs.
//
// A nil *progress draws nothing; startProgress returns nil when w is not
// a terminal, so that pipes, files, -json runs and tests see no progress.
type progress struct {
	w     io.Writer
	label string
	total int64 // 0: unknown
	start time.Time
	done  atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup // the redraw goroutine
}

// progressInterval is how often the line is redrawn.
const progressInterval = 100 * time.Millisecond

// startProgress starts drawing progress of the work named label, total
// units long (0: unknown), on w when w is a terminal; it returns nil
// otherwise. Call finish when the work is over.
func startProgress(w io.Writer, label string, total int64) *progress {
	if !isTerminal(w) {
		return nil
	}
	return drawProgress(w, label, total)
}

// drawProgress starts drawing progress on w, terminal or not.
func drawProgress(w io.Writer, label string, total int64) *progress {
	p := &progress{w: w, label: label, total: total, start: time.Now(), stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for frame := 0; ; frame++ {
			fmt.Fprintf(p.w, "\r%s\x1b[K", progressLine(p.label, p.done.Load(), p.total, time.Since(p.start), frame))
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// add records n more units done.
func (p *progress) add(n int64) {
	if p != nil {
		p.done.Add(n)
	}
}

// set records that n units are done.
func (p *progress) set(n int64) {
	if p != nil {
		p.done.Store(n)
	}
}

// finish stops the redrawing and erases the line, leaving the terminal as
// it was for the command's output.
func (p *progress) finish() {
	if p == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	fmt.Fprint(p.w, "\r\x1b[K")
}

// progressWidth is the width of the bar in characters.
const progressWidth = 30

// spinner are the frames of the spinner shown when the total is unknown.
const spinner = `|/-\`

// progressLine renders one state of the progress line: label, then a bar
// with the percentage when total is known, or a spinner frame, then the
// elapsed time.
func progressLine(label string, done, total int64, elapsed time.Duration, frame int) string {
	el := elapsed.Truncate(100 * time.Millisecond)
	if total <= 0 {
		if done <= 0 {
			return fmt.Sprintf("%s %c %v", label, spinner[frame%len(spinner)], el)
		}
		return fmt.Sprintf("%s %c %v, %d done", label, spinner[frame%len(spinner)], el, done)
	}
	done = min(max(done, 0), total)
	filled := int(done * progressWidth / total)
	return fmt.Sprintf("%s [%s%s] %3d%% %v", label,
		strings.Repeat("=", filled), strings.Repeat(" ", progressWidth-filled), done*100/total, el)
}

// isTerminal reports whether w is a terminal. A character-device test
// would take /dev/null for one; x/term asks the terminal driver.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
