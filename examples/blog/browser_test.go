package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/cachekit/cachekit/internal/testserver"
)

// update asks TestBrowser to write the README's screenshot,
// docs/images/blog.png (or set CACHEKIT_UPDATE_SCREENSHOT=1). CI never
// sets it, so it never rewrites the file.
var update = flag.Bool("update", false, "write the README's screenshot docs/images/blog.png")

// screenshotPath is where -update writes the screenshot, from this
// directory.
const screenshotPath = "../../docs/images/blog.png"

// chromium returns the path of Debian's chromium, or skips the test when
// it is missing (fails it when CACHEKIT_REQUIRE_SERVERS=1, as make test
// sets: CI cannot pass by skipping).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "chromium not found on PATH: run scripts/ensure-chromium.sh (it installs Debian's chromium package)"
	if testserver.Required() {
		t.Fatal(msg + "; CACHEKIT_REQUIRE_SERVERS=1 forbids skipping")
	}
	t.Skip(msg)
	return ""
}

// newBrowser starts a headless chromium with a profile of the test's own
// and returns a tab's context; the browser stops when the test ends or
// after timeout.
func newBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to run its sandbox as root.
		opts = append(opts, chromedp.NoSandbox)
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		bcancel()
		acancel()
		cancel()
	})
	// Start the browser now, so that a failure to start is reported as such.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// cacheStatus returns the Cache-Status header of a document response.
func cacheStatus(res *network.Response) string {
	for k, v := range res.Headers {
		if strings.EqualFold(k, "Cache-Status") {
			return fmt.Sprint(v)
		}
	}
	return ""
}

// isHit reports whether a Cache-Status value says the response was served
// from the cache (RFC 9211: the "hit" parameter).
func isHit(status string) bool {
	for _, p := range strings.Split(status, ";") {
		if strings.TrimSpace(p) == "hit" {
			return true
		}
	}
	return false
}

// TestBrowser drives the blog in headless chromium as a reader and an
// editor would: a reloaded post is a cache hit (Cache-Status), an edit
// through the form shows on the next load, and a page the edit did not
// touch is still a hit.
func TestBrowser(t *testing.T) {
	ctx := newBrowser(t, 60*time.Second) // first: it skips without chromium
	_, srv := newTestServer(t)

	load := func(path string) (status, text string) {
		t.Helper()
		res, err := chromedp.Run(ctx, chromedp.NavigateResponse(srv.URL+path))
		if err != nil {
			t.Fatalf("load %s: %v", path, err)
		}
		if res.Status != 200 {
			t.Fatalf("load %s: status %d", path, res.Status)
		}
		text, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
		if err != nil {
			t.Fatalf("text of %s: %v", path, err)
		}
		t.Logf("load %s: %d, Cache-Status %q", path, res.Status, cacheStatus(res))
		return cacheStatus(res), text
	}

	// The unrelated page: another author's, loaded before the edit; and
	// the list of posts, which the edit changes.
	if status, text := load("/authors/2"); !strings.Contains(text, "Grace Murray") {
		t.Fatalf("/authors/2 (Cache-Status %q):\n%s", status, text)
	}
	load("/")
	status, text := load("/posts/1")
	if !strings.Contains(text, "Why caches go stale") {
		t.Fatalf("/posts/1 (Cache-Status %q):\n%s", status, text)
	}
	if isHit(status) {
		t.Errorf("first load of /posts/1 is a hit: Cache-Status %q", status)
	}

	res, err := chromedp.RunResponse(ctx, chromedp.Reload())
	if err != nil {
		t.Fatalf("reload /posts/1: %v", err)
	}
	t.Logf("reload /posts/1: %d, Cache-Status %q", res.Status, cacheStatus(res))
	if got := cacheStatus(res); !isHit(got) {
		t.Errorf("reload of /posts/1: Cache-Status %q, want a hit", got)
	}

	// Edit through the form: type the new text and submit, as a user does.
	const title, body = "Stale caches, fixed", "Edited in headless chromium: the next load shows this text."
	for _, f := range []struct{ sel, value string }{{"#title", title}, {"#body", body}} {
		if err := chromedp.Do(ctx, chromedp.Clear(chromedp.CSS(f.sel)), chromedp.SendKeys(chromedp.CSS(f.sel), f.value)); err != nil {
			t.Fatalf("fill %s: %v", f.sel, err)
		}
	}
	res, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("#save")))
	if err != nil {
		t.Fatalf("submit the edit: %v", err)
	}
	t.Logf("submit: %d at %s, Cache-Status %q", res.Status, res.URL, cacheStatus(res))
	if res.Status != 200 || !strings.HasSuffix(res.URL, "/posts/1") {
		t.Fatalf("after the edit: status %d at %s", res.Status, res.URL)
	}

	status, text = load("/posts/1")
	if !strings.Contains(text, title) || !strings.Contains(text, body) || strings.Contains(text, "Why caches go stale") {
		t.Errorf("/posts/1 after the edit (Cache-Status %q) lacks the new text or still has the old title:\n%s", status, text)
	}
	if status, text := load("/"); isHit(status) || !strings.Contains(text, title) {
		t.Errorf("/ after the edit (Cache-Status %q) is a hit or lacks the new title:\n%s", status, text)
	}
	if status, _ := load("/authors/2"); !isHit(status) {
		t.Errorf("/authors/2, untouched by the edit: Cache-Status %q, want a hit", status)
	}

	if *update || os.Getenv("CACHEKIT_UPDATE_SCREENSHOT") == "1" {
		writeScreenshot(t, ctx, srv.URL)
	}
}

// writeScreenshot saves the README's picture: /debug/cache after the
// test's loads and edit and a short visit of a reader, with its hit ratios
// and invalidations.
func writeScreenshot(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	for _, p := range []string{"/posts/2", "/posts/3", "/authors/1", "/authors/3", "/tags/go", "/posts/2", "/posts/3", "/authors/3", "/", "/tags/go"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(base+p)); err != nil {
			t.Fatalf("load %s: %v", p, err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/debug/cache"), chromedp.WaitVisible(chromedp.CSS("#invalidations"))); err != nil {
		t.Fatalf("load /debug/cache: %v", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(screenshotPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(screenshotPath, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", screenshotPath, len(png))
}
