package main

import (
	"context"
	"fmt"
	"time"

	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/internal/limitread"
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

// readLimitedFile reads a file of at most limit bytes through
// limitread.ReadFile (a larger one is refused before it is read whole, the
// error naming the file and the limit); what names the input in errors.
func readLimitedFile(path string, limit int64, what string) ([]byte, error) {
	data, err := limitread.ReadFile(path, limit)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	return data, nil
}
