package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	cases := []struct {
		name       string
		env        map[string]string
		gogc       int   // the target after tuneGC
		limit      int64 // the soft memory limit after tuneGC
		setG, setL bool  // what tuneGC reports it set
	}{
		{name: "nothing set: the coordinator's target and limit", gogc: serveGCPercent, limit: serveMemoryLimit, setG: true, setL: true},
		{name: "GOGC set: both left to the runtime", env: map[string]string{"GOGC": "50"}, gogc: 100, limit: math.MaxInt64},
		{name: "GOMEMLIMIT set: only the target", env: map[string]string{"GOMEMLIMIT": "1GiB"}, gogc: serveGCPercent, limit: math.MaxInt64, setG: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(math.MaxInt64)
			gogc, limit := tuneGC(func(k string) string { return tc.env[k] })
			if (gogc != 0) != tc.setG || (limit != 0) != tc.setL {
				t.Errorf("tuneGC reports %d, %d; want target set %v, limit set %v", gogc, limit, tc.setG, tc.setL)
			}
			if got := debug.SetGCPercent(100); got != tc.gogc {
				t.Errorf("target %d, want %d", got, tc.gogc)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.limit {
				t.Errorf("memory limit %d, want %d", got, tc.limit)
			}
		})
	}
}
