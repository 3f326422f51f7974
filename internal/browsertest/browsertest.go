// Package browsertest runs tests in a real Chromium driven over the DevTools
// protocol (chromedp): one browser process per test binary, a fresh tab per
// test with a deadline, a screenshot saved when a test fails, and WebAuthn
// virtual authenticators to stand in for passkeys.
//
// A test binary that uses it calls [Main] from TestMain, which stops the
// browser and removes its profile when the tests end:
//
//	func TestMain(m *testing.M) { os.Exit(browsertest.Main(m)) }
//
// Chromium comes from Debian's chromium package (scripts/chromium.sh
// install), or from $QUORATE_CHROMIUM. When it is missing a test is skipped
// loudly, and fails under CI (environment variable CI set and non-empty).
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// DefaultTimeout bounds everything one test does in its tab.
const DefaultTimeout = 60 * time.Second

// candidates are the browser binaries looked for on PATH, in order.
var candidates = []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"}

// Path returns the Chromium binary to run: $QUORATE_CHROMIUM when set, or
// the first of chromium, chromium-browser, google-chrome-stable,
// google-chrome on PATH.
func Path() (string, error) {
	if p := os.Getenv("QUORATE_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("QUORATE_CHROMIUM=%s: %w", p, err)
		}
		return p, nil
	}
	for _, name := range candidates {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no chromium on PATH (run: scripts/chromium.sh install)")
}

// Flags are the Chromium switches the tests run with: headless, no sandbox
// (containers run tests as root), no GPU, and nothing that reaches the
// network by itself.
var Flags = []chromedp.ExecAllocatorOption{
	chromedp.Headless,
	chromedp.NoSandbox,
	chromedp.DisableGPU,
	chromedp.NoFirstRun,
	chromedp.NoDefaultBrowserCheck,
	chromedp.Flag("disable-quic", true),
	chromedp.Flag("disable-background-networking", true),
	chromedp.Flag("disable-component-update", true),
	chromedp.Flag("disable-sync", true),
	chromedp.Flag("disable-dev-shm-usage", true),
	chromedp.Flag("disable-extensions", true),
	chromedp.Flag("disable-default-apps", true),
	chromedp.Flag("disable-breakpad", true),
	chromedp.Flag("password-store", "basic"),
	chromedp.Flag("use-mock-keychain", true),
	chromedp.WindowSize(1280, 900),
}

// Browser is the Chromium process shared by the tests of one binary.
type Browser struct {
	ctx     context.Context // browser context; tabs derive from it
	cancel  context.CancelFunc
	profile string
}

var (
	sharedOnce sync.Once
	shared     *Browser
	sharedErr  error
	sharedMu   sync.Mutex // guards closing against a late start
)

// Shared returns the browser of this test binary, starting it on first
// use. When Chromium is missing or does not start, the test is skipped
// loudly, or fails under CI.
func Shared(tb testing.TB) *Browser {
	tb.Helper()
	path, err := Path()
	if err != nil {
		skipOrFail(tb, err.Error())
	}
	sharedOnce.Do(func() {
		sharedMu.Lock()
		defer sharedMu.Unlock()
		shared, sharedErr = start(path)
	})
	if sharedErr != nil {
		skipOrFail(tb, "starting "+path+": "+sharedErr.Error())
	}
	return shared
}

func start(path string) (*Browser, error) {
	profile, err := os.MkdirTemp("", "quorate-chromium-")
	if err != nil {
		return nil, err
	}
	opts := append([]chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.UserDataDir(profile)}, Flags...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	b := &Browser{ctx: ctx, profile: profile, cancel: func() { cancelBrowser(); cancelAlloc() }}
	// The first run starts the process; it must not carry a deadline, which
	// would stop the browser with it. Bound the wait separately.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err = <-started:
	case <-time.After(DefaultTimeout):
		err = errors.New("chromium did not start within " + DefaultTimeout.String())
	}
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *Browser) close() {
	b.cancel()
	os.RemoveAll(b.profile)
}

// Main runs the tests and then stops the shared browser, if one started.
// Call it from TestMain: os.Exit(browsertest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.close()
		shared = nil
	}
	return code
}

func skipOrFail(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("browser tests cannot run under CI: %s", why)
	}
	tb.Skipf("\n\n!!!!!!!!!! SKIPPING browser test: %s !!!!!!!!!!\n\n", why)
}

// Tab opens a new tab in the shared browser for this test and returns its
// context, which expires after timeout (0 means [DefaultTimeout]). The tab
// closes when the test ends; if the test failed, a screenshot of the tab is
// saved first (see [ScreenshotDir]) and its path logged.
func Tab(tb testing.TB, timeout time.Duration) context.Context {
	tb.Helper()
	b := Shared(tb)
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tabCtx, closeTab := chromedp.NewContext(b.ctx)
	tb.Cleanup(closeTab)
	if err := chromedp.Do(tabCtx); err != nil { // opens the tab
		tb.Fatalf("opening a tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(tabCtx, timeout)
	tb.Cleanup(cancel)
	tb.Cleanup(func() { // runs before the two above
		if tb.Failed() {
			SaveScreenshot(tb, tabCtx, "failure")
		}
	})
	return ctx
}

// ScreenshotDir is where screenshots go: $QUORATE_BROWSER_ARTIFACTS, or
// quorate-browsertest under the temporary directory.
func ScreenshotDir() string {
	if d := os.Getenv("QUORATE_BROWSER_ARTIFACTS"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "quorate-browsertest")
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// SaveScreenshot saves a full-page PNG of the tab to ScreenshotDir, named
// after the test and name, and logs its path. It returns the path, or "" if
// the screenshot could not be taken (which it logs; it does not fail the
// test).
func SaveScreenshot(tb testing.TB, tab context.Context, name string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tab, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.Logf("screenshot %s: %v", name, err)
		return ""
	}
	dir := ScreenshotDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Logf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(dir, unsafeName.ReplaceAllString(tb.Name()+"-"+name, "_")+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.Logf("screenshot %s: %v", name, err)
		return ""
	}
	tb.Logf("screenshot: %s", path)
	return path
}

// Authenticator is a WebAuthn virtual authenticator attached to one tab.
type Authenticator struct {
	ID webauthn.AuthenticatorID
}

// AddAuthenticator enables the WebAuthn domain in the tab and attaches a
// virtual platform authenticator standing for a passkey: CTAP 2.1 over the
// internal transport, with resident keys and user verification that
// succeeds, and user presence confirmed automatically.
func AddAuthenticator(ctx context.Context) (*Authenticator, error) {
	var id webauthn.AuthenticatorID
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return fmt.Errorf("WebAuthn.enable: %w", err)
		}
		res, err := cdp.Call(ctx, t, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol:                    webauthn.AuthenticatorProtocolCtap2,
				Ctap2version:                webauthn.Ctap2versionCtap21,
				Transport:                   webauthn.AuthenticatorTransportInternal,
				HasResidentKey:              true,
				HasUserVerification:         true,
				IsUserVerified:              true,
				AutomaticPresenceSimulation: true,
			},
		})
		if err != nil {
			return fmt.Errorf("WebAuthn.addVirtualAuthenticator: %w", err)
		}
		id = res.AuthenticatorID
		return nil
	}))
	if err != nil {
		return nil, err
	}
	return &Authenticator{ID: id}, nil
}

// SetUserVerified makes the authenticator's user verification succeed or
// fail from now on.
func (a *Authenticator) SetUserVerified(ctx context.Context, verified bool) error {
	return chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, webauthn.SetUserVerified, webauthn.SetUserVerifiedParams{AuthenticatorID: a.ID, IsUserVerified: verified})
		return err
	}))
}

// SetResponseOverrideBits makes the authenticator's responses from now on
// clear the user-verified (badUV) or user-present (badUP) flag, still
// signed: an authenticator that did not verify or see the user.
func (a *Authenticator) SetResponseOverrideBits(ctx context.Context, badUV, badUP bool) error {
	return chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, webauthn.SetResponseOverrideBits, webauthn.SetResponseOverrideBitsParams{AuthenticatorID: a.ID, IsBadUV: &badUV, IsBadUP: &badUP})
		return err
	}))
}
