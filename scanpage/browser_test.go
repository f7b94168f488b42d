package scanpage_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/privnum/privnum/binding"
	"github.com/privnum/privnum/qr"
	"github.com/privnum/privnum/scanpage"
)

// screenshotEnv names a directory to save the browser test's screenshots
// in, to look at the page by eye.
const screenshotEnv = "SCANPAGE_SCREENSHOTS"

// chromium finds Debian's chromium. Without it the test is skipped, except
// under CI (CI set), where it fails so that CI cannot skip it silently.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found, and CI is set: install it (apt-get install chromium); .ci/run does")
	}
	t.Skip("chromium not installed (apt-get install chromium); CI runs this test")
	return ""
}

// browser starts a headless chromium with a fresh profile and no network
// beyond what the test serves.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	profile, err := os.MkdirTemp("", "scanpage-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(390, 844),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc() // also waits for chromium to exit
		os.RemoveAll(profile)
	})
	// Start the browser with a context of its own: a timeout on the first
	// Run would end the whole browser.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// seen records the browser headers of the form posts.
type seen struct {
	mu    sync.Mutex
	posts []http.Header
}

func (s *seen) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			s.mu.Lock()
			s.posts = append(s.posts, r.Header.Clone())
			s.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

func TestBrowserScan(t *testing.T) {
	bctx := browser(t)
	e := newEnv(t, 2, qr.Config{}, nil)
	c := e.mint(t, qr.MiddleNumber, "Noodle Bar 12")
	var posts seen
	mux := http.NewServeMux()
	mux.Handle(scanpage.PathPrefix, posts.wrap(e.h))
	srv := httptest.NewServer(mux) // 127.0.0.1
	defer srv.Close()

	// The race detector slows everything down: be generous.
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	shots := os.Getenv(screenshotEnv)
	shot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		p := filepath.Join(shots, name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", p)
	}

	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch),
		chromedp.Navigate(srv.URL+"/q/"+c.Token),
		chromedp.WaitVisible(chromedp.ID("number")),
	)
	if err != nil {
		t.Fatalf("open the scan page: %v", err)
	}
	// The inline style sheet applies under the strict CSP.
	bg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("button")).backgroundColor`))
	if err != nil {
		t.Fatal(err)
	}
	if bg != "rgb(10, 125, 59)" {
		t.Errorf("button background %q: the style sheet did not apply (CSP?)", bg)
	}
	shot("form")

	// A number the service refuses: the form comes back with the problem
	// named, and the field empty (the input is not echoed).
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("number"), "12"),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("number-error")),
	)
	if err != nil {
		t.Fatalf("submit a bad number: %v", err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("number-error")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "too short") {
		t.Errorf("error message %q", msg)
	}
	if v, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("number"))); err != nil || v != "" {
		t.Errorf("number field after an error = %q, %v; want it empty", v, err)
	}
	shot("error")

	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("number"), scannerInput),
		chromedp.Click(chromedp.CSS("button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("a.call")),
	)
	if err != nil {
		t.Fatalf("submit the number: %v", err)
	}
	href, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("a.call"), "href"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("a.call")))
	if err != nil {
		t.Fatal(err)
	}
	x, ok := strings.CutPrefix(href.Value, "tel:")
	if !ok || !strings.HasPrefix(x, "+86170") {
		t.Fatalf("link %q (%q), want tel:+86170…", href.Value, text)
	}
	if strings.ReplaceAll(text, " ", "") != x {
		t.Errorf("link text %q does not show %s", text, x)
	}
	route, err := e.bindings.Resolve(context.Background(), x, scanner)
	if err != nil || route.Action != binding.Connect || route.Target != owner {
		t.Errorf("Resolve(%s, scanner) = %+v, %v; want a connection to the owner", x, route, err)
	}
	page, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if err != nil {
		t.Fatal(err)
	}
	noNumbers(t, page, true)
	shot("result")

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/q/"+strings.Repeat("b", qr.TokenLen))); err != nil {
		t.Fatal(err)
	}
	if h1, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1"))); err != nil || h1 != "This code is not valid" {
		t.Errorf("unknown code page: %q, %v", h1, err)
	}
	shot("unknown")

	posts.mu.Lock()
	defer posts.mu.Unlock()
	if len(posts.posts) != 2 {
		t.Fatalf("server saw %d posts, want 2", len(posts.posts))
	}
	h := posts.posts[1]
	t.Logf("form post: Origin %q, Sec-Fetch-Site %q, Referer %q, Content-Type %q",
		h.Get("Origin"), h.Get("Sec-Fetch-Site"), h.Get("Referer"), h.Get("Content-Type"))
	if h.Get("Referer") != "" {
		t.Errorf("the browser sent a Referer (%q) despite Referrer-Policy no-referrer", h.Get("Referer"))
	}
}
