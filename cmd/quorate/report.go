package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer/client"
)

// reportTimeout bounds posting a verification outcome: a deploy gate does
// not wait on the coordinator's metrics.
const reportTimeout = 10 * time.Second

// reportVerdict posts v's outcome to the coordinator at url (verify
// --report), authenticated as cf says (read token, client certificate). A
// failure is a warning: the report never changes the verdict.
func (a *app) reportVerdict(ctx context.Context, cf clientFlags, url string, v *policy.Verdict, arts []policy.Artifact, latency time.Duration) {
	cf.url = url
	cl, err := a.client(&cf)
	if err != nil {
		a.errf("warning: verification outcome not reported: %s\n", display.String(err.Error()))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	if err := cl.Report(ctx, client.ReportFromVerdict(v, arts, latency)); err != nil {
		a.errf("warning: verification outcome not reported: %s\n", display.String(err.Error()))
		return
	}
	a.errf("reported the outcome to %s\n", display.String(url))
}

// readLimitedFile reads a file of at most limit bytes, refusing larger
// ones before reading them whole; what names the flag in errors.
func readLimitedFile(path string, limit int64, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s %s is over the %d-byte limit", what, path, limit)
	}
	return data, nil
}
