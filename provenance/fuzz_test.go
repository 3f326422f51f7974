package provenance

import (
	"encoding/json"
	"testing"

	"github.com/quorate-dev/quorate/attest"
)

// FuzzParse: Parse never panics, and what it accepts re-encodes to a
// document it accepts again with the same source, builder and subjects
// (so the fields a gate checks cannot mean two things).
func FuzzParse(f *testing.F) {
	f.Add([]byte(tagBuild))
	f.Add([]byte(`{"buildDefinition":{"buildType":"t","externalParameters":{}},"runDetails":{"builder":{"id":"b"}}}`))
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`))
	f.Add([]byte(`{"buildDefinition":{"buildType":"t","externalParameters":{"source":{"ref":"refs/tags/v1"}},"resolvedDependencies":[{"uri":"git+https://x/a","digest":{"gitCommit":"` + testCommit + `"}}]},"runDetails":{"builder":{"id":"b"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, Limits{})
		if err != nil {
			return
		}
		var again []byte
		if p.Subjects != nil {
			again, err = json.Marshal(Statement{Type: StatementType, Subject: p.Subjects, PredicateType: PredicateType, Predicate: &p.Predicate})
		} else {
			again, err = json.Marshal(p.Predicate)
		}
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		q, err := Parse(again, Limits{})
		if err != nil {
			t.Fatalf("re-encoded document refused: %v\n%s", err, again)
		}
		if q.Predicate.RunDetails.Builder.ID != p.Predicate.RunDetails.Builder.ID || (q.Source == nil) != (p.Source == nil) ||
			p.Source != nil && *q.Source != *p.Source || len(q.Subjects) != len(p.Subjects) {
			t.Fatalf("re-encoded document means something else:\n%+v\n%+v", p, q)
		}
		_ = Check(p, []attest.Subject{appSubject}, "g", productionRq)
		_ = p.Summary().Lines()
	})
}
