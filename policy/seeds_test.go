package policy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorate-dev/quorate/attest"
)

// TestWriteFuzzSeeds regenerates the fuzz seed corpora from a real trust
// directory and real envelopes. Run it by hand after a format change:
//
//	QUORATE_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds ./policy
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("QUORATE_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set QUORATE_WRITE_FUZZ_SEEDS=1 to rewrite the seed corpora")
	}
	f := newFixture(t, defaultRoles(t))
	env := f.approved(t, "production")
	parsed, payload, err := attest.ParseEnvelope(env, attest.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	prov := f.statement(t, "staging", func(p *attest.Predicate) {
		p.Provenance = &attest.Provenance{PredicateType: attest.SLSAProvenance, URI: "https://ci.example/build/1", Digest: map[string]string{"sha256": strings.Repeat("a", 64)}}
	})
	unsigned := encode(t, attest.NewEnvelope(payload))
	parsed.PayloadType = "application/json"
	retyped := encode(t, parsed)

	write(t, "../attest/testdata/fuzz/FuzzParseEnvelope", "real-production", env)
	write(t, "../attest/testdata/fuzz/FuzzParseEnvelope", "unsigned", unsigned)
	write(t, "../attest/testdata/fuzz/FuzzParseEnvelope", "other-payload-type", retyped)
	write(t, "../attest/testdata/fuzz/FuzzParseStatement", "real-production", payload)
	write(t, "../attest/testdata/fuzz/FuzzParseStatement", "with-provenance", prov)
	write(t, "testdata/fuzz/FuzzParseRoot", "real-root", f.Root)
	write(t, "testdata/fuzz/FuzzParseTargets", "real-targets", f.Targets)
	write(t, "testdata/fuzz/FuzzLoadBytes", "real-trust", f.Root, f.Targets)
	write(t, "testdata/fuzz/FuzzLoadBytes", "targets-as-root", f.Targets, f.Targets)
	write(t, "../internal/strictjson/testdata/fuzz/FuzzCheckDuplicates", "real-envelope", env)
	write(t, "../internal/strictjson/testdata/fuzz/FuzzCheckDuplicates", "real-targets", f.Targets)
}

// write stores one seed in Go's corpus file format.
func write(t *testing.T, dir, name string, args ...[]byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		fmt.Fprintf(&b, "[]byte(%q)\n", a)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
