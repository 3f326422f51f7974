package provenance_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/provenance"
)

// A verifier checks a release's provenance against its gate's requirements
// and tells why it refuses.
func ExampleCheck() {
	doc := `{
  "buildDefinition": {
    "buildType": "https://quorate.dev/buildtypes/github-actions/v1",
    "externalParameters": {"workflow": {"ref": "refs/heads/main", "repository": "https://github.com/acme/app"}},
    "resolvedDependencies": [{"uri": "git+https://github.com/acme/app@refs/heads/main",
      "digest": {"gitCommit": "0123456789abcdef0123456789abcdef01234567"}}]
  },
  "runDetails": {"builder": {"id": "https://github.com/acme/app/.github/workflows/release.yml"}}
}`
	p, err := provenance.Parse([]byte(doc), provenance.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, l := range p.Summary().Lines() {
		fmt.Printf("%s: %s\n", l.Label, l.Value)
	}
	req := provenance.Requirements{
		Builders: []string{"https://github.com/acme/app/.github/workflows/release.yml"},
		Sources:  []string{"https://github.com/acme/*"},
		Refs:     []string{"refs/tags/v*"},
	}
	subject := attest.Subject{Name: "app.tar.gz", Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}}
	err = provenance.Check(p, []attest.Subject{subject}, "production", req)
	fmt.Println(err)
	fmt.Println(errors.Is(err, provenance.ErrRefNotAllowed), errors.Is(err, provenance.ErrBuilderNotAllowed))
	// Output:
	// builder: https://github.com/acme/app/.github/workflows/release.yml
	// build type: https://quorate.dev/buildtypes/github-actions/v1
	// source: https://github.com/acme/app@0123456789abcdef0123456789abcdef01234567
	// ref: refs/heads/main
	// run: (not recorded)
	// tools: (not recorded)
	// source ref refs/heads/main does not match refs/tags/v* (gate production)
	// true false
}
