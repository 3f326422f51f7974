package main

import (
	"fmt"
	"testing"
)

func TestReplicaFor(t *testing.T) {
	const requests, perRequest, replicas = 200, 15, 2
	for _, tc := range []struct {
		name string
		// every signature of a request on one replica
		sticky bool
		// each signature on another replica than the one before
		alternates bool
	}{
		{"alternate", false, true},
		{"request", true, false},
		{"random", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			perReplica := make([]int, replicas)
			sticky, alternates := true, true
			for r := range requests {
				id := fmt.Sprintf("load-%06d", r)
				first, prev := -1, r%replicas // opened on replica r mod n
				for k := 1; k <= perRequest; k++ {
					to := replicaFor(tc.name, id, r, k, replicas)
					if to < 0 || to >= replicas {
						t.Fatalf("request %d signature %d to replica %d of %d", r, k, to, replicas)
					}
					perReplica[to]++
					if first < 0 {
						first = to
					}
					sticky = sticky && to == first
					alternates = alternates && to != prev
					prev = to
				}
			}
			if sticky != tc.sticky || alternates != tc.alternates {
				t.Fatalf("sticky %v alternates %v; want %v %v", sticky, alternates, tc.sticky, tc.alternates)
			}
			// Either way both replicas take a fair share.
			for i, n := range perReplica {
				if n < requests*perRequest/replicas*3/4 {
					t.Fatalf("replica %d took %d of %d signatures", i, n, requests*perRequest)
				}
			}
		})
	}
}
