package admission

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/policy"
)

// FetchFunc fetches the trusted policy as of now and says until when it may
// be used without fetching again: for the coordinator's TUF repository,
// signer/tufrepo.Fetch and the expiry of the timestamp.json it verified
// ([TimestampExpiry] of its cache directory).
type FetchFunc func(ctx context.Context, now time.Time) (*policy.Trust, time.Time, error)

// RefreshingTrust keeps the policy the webhook verifies against: it fetches
// it every Interval in the background ([RefreshingTrust.Run]) and keeps the
// last policy fetched while fetching fails (the coordinator is
// unreachable), until that policy's validity ends (the TUF timestamp
// expires). After that, [RefreshingTrust.Trust] returns an error and
// admission fails closed for every image not in the verdict cache. It is
// safe for concurrent use; pass its Trust method as [PolicyVerifier.Trust]
// and its Ready method as [ServerOptions.Ready].
type RefreshingTrust struct {
	Fetch    FetchFunc
	Interval time.Duration    // default 1 minute
	Now      func() time.Time // default time.Now
	Logger   *slog.Logger     // nil discards

	mu      sync.Mutex
	trust   *policy.Trust
	until   time.Time
	lastErr error
}

// Refresh fetches once; on failure the policy fetched before stays in use.
func (r *RefreshingTrust) Refresh(ctx context.Context) error {
	t, until, err := r.Fetch(ctx, r.now())
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.lastErr = err
		r.logger().LogAttrs(ctx, slog.LevelWarn, "policy refresh failed; the last policy fetched stays in use until it expires",
			slog.String("error", display.String(err.Error())), slog.Time("valid_until", r.until))
		return err
	}
	if t == nil || until.IsZero() {
		r.lastErr = errors.New("the fetch returned no policy or no validity")
		return r.lastErr
	}
	r.trust, r.until, r.lastErr = t, until, nil
	return nil
}

// Run refreshes every Interval until ctx ends.
func (r *RefreshingTrust) Run(ctx context.Context) {
	every := r.Interval
	if every <= 0 {
		every = time.Minute
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			_ = r.Refresh(ctx)
		}
	}
}

// Trust returns the policy to verify against now, or an error when there
// is none still valid.
func (r *RefreshingTrust) Trust(context.Context) (*policy.Trust, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	switch {
	case r.trust == nil && r.lastErr != nil:
		return nil, fmt.Errorf("no policy fetched yet: %w", r.lastErr)
	case r.trust == nil:
		return nil, errors.New("no policy fetched yet")
	case !now.Before(r.until) && r.lastErr != nil:
		return nil, fmt.Errorf("the last policy fetched was valid until %s (TUF timestamp expiry) and refreshing fails: %w", r.until.UTC().Format(time.RFC3339), r.lastErr)
	case !now.Before(r.until):
		return nil, fmt.Errorf("the last policy fetched was valid until %s (TUF timestamp expiry)", r.until.UTC().Format(time.RFC3339))
	}
	return r.trust, nil
}

// Ready reports whether [RefreshingTrust.Trust] has a policy.
func (r *RefreshingTrust) Ready(ctx context.Context) error {
	_, err := r.Trust(ctx)
	return err
}

func (r *RefreshingTrust) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *RefreshingTrust) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// TimestampExpiry returns the expiry of the timestamp.json that go-tuf's
// updater verified and keeps in the TUF cache directory dir (signer/tufrepo's
// CacheDir). The file is only read: it was verified when written, and the
// cache directory is the webhook's own (0700).
func TimestampExpiry(dir string) (time.Time, error) {
	data, err := os.ReadFile(filepath.Join(dir, "timestamp.json"))
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the cached TUF timestamp: %w", err)
	}
	ts, err := metadata.Timestamp().FromBytes(data)
	if err != nil {
		return time.Time{}, fmt.Errorf("the cached TUF timestamp: %w", err)
	}
	return ts.Signed.Expires, nil
}
