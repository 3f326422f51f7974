package main

import (
	"fmt"
	"testing"

	"github.com/quorate-dev/quorate/attest"
)

// jobsFor returns requests × perRequest jobs; job (r, k) has id r and the
// key ID k.
func jobsFor(requests, perRequest int) [][]job {
	out := make([][]job, requests)
	for r := range out {
		for k := range perRequest {
			out[r] = append(out[r], job{id: fmt.Sprint(r), sig: attest.Signature{KeyID: fmt.Sprint(k)}})
		}
	}
	return out
}

func TestOrder(t *testing.T) {
	const requests, perRequest, clients = 600, 15, 64
	for _, tc := range []struct {
		name string
		how  string
		// in every window of 64 signatures of the middle half of the run,
		// at most this many complete their request (staggered)
		maxCompleting int
		// the share of completions in the run's last 600 signatures
		lastShare float64
	}{
		{"ranks", "ranks", 0, 1},
		{"staggered", "staggered", 6, 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jobs := order(jobsFor(requests, perRequest), tc.how, clients)
			if len(jobs) != requests*perRequest {
				t.Fatalf("%d jobs, want %d", len(jobs), requests*perRequest)
			}
			next := map[string]int{} // each request's next signature
			completing := make([]bool, len(jobs))
			for i, j := range jobs {
				k := next[j.id]
				if j.sig.KeyID != fmt.Sprint(k) {
					t.Fatalf("job %d: request %s's signature %s, want its signature %d (each once, in order)", i, j.id, j.sig.KeyID, k)
				}
				next[j.id] = k + 1
				completing[i] = k == perRequest-1
			}
			worst := 0
			for lo := len(jobs) / 4; lo+64 <= len(jobs)*3/4; lo++ {
				n := 0
				for _, c := range completing[lo : lo+64] {
					if c {
						n++
					}
				}
				worst = max(worst, n)
			}
			last := 0
			for _, c := range completing[len(jobs)-requests:] {
				if c {
					last++
				}
			}
			share := float64(last) / requests
			t.Logf("at most %d of 64 signatures complete a request mid-run; %.0f%% of the last %d", worst, 100*share, requests)
			if tc.how == "ranks" && (worst != 0 || share != 1) {
				t.Errorf("ranks: %d completing mid-run, %.2f of the last %d; want none and all", worst, share, requests)
			}
			if tc.how == "staggered" && (worst > tc.maxCompleting || share > tc.lastShare+0.05) {
				t.Errorf("staggered: up to %d of 64 complete mid-run (want at most %d), %.2f of the last %d (want about %.2f)", worst, tc.maxCompleting, share, requests, tc.lastShare)
			}
		})
	}
}
