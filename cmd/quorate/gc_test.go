package main

import (
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	cases := []struct {
		name string
		gogc string
		set  bool
		want int
	}{
		{"GOGC unset: the coordinator's target", "", true, serveGCPercent},
		{"GOGC set: left to the runtime", "50", false, 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			set := tuneGC(func(k string) string {
				if k == "GOGC" {
					return tc.gogc
				}
				return ""
			})
			if got := debug.SetGCPercent(100); set != tc.set || got != tc.want {
				t.Errorf("tuneGC = %v, target %d; want %v, %d", set, got, tc.set, tc.want)
			}
		})
	}
}
