package author_test

import (
	"testing"

	"github.com/quorate-dev/quorate/internal/policytest"
)

// The trust-directory fixture is shared with package policy's tests.
var (
	epoch        = policytest.Epoch
	p256         = policytest.P256
	defaultRoles = policytest.DefaultRoles
	publics      = policytest.Publics
	signDraft    = policytest.SignDraft
)

type fixture struct{ *policytest.Fixture }

func newFixture(tb testing.TB, specs []policytest.RoleSpec) *fixture {
	return &fixture{policytest.NewFixture(tb, specs)}
}
