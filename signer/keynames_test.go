package signer_test

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/keys"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/policy/author"
	"github.com/quorate-dev/quorate/signer/client"
)

// TestViewsNameKeys: a request's view names its keys (requester, signers,
// eligible keys) from the enforced policy; a key the enforced policy no
// longer holds is named as the request's own policy version named it;
// listings name keys from the enforced policy only.
func TestViewsNameKeys(t *testing.T) {
	w := newTUFWorld(t)
	dev, dev2 := w.dev.Public().ID(), w.dev2.Public().ID()
	publish := func(edit func(d *author.Draft) error) {
		t.Helper()
		d, err := author.OpenDraft(w.dir, w.clock())
		must(t, err)
		must(t, edit(d))
		_, err = d.Sign(context.Background(), w.admin)
		must(t, err)
		must(t, d.Save())
		trust, err := policy.Load(w.dir, policy.LoadOptions{Now: w.clock(), TrustRoot: w.root1})
		must(t, err)
		must(t, w.svc.SetTrust(trust))
	}
	publish(func(d *author.Draft) error {
		return d.NameKeys(policy.KeyNames{dev: {Name: "dev-one", Owner: "one@example.com"}, dev2: {Name: "dev-two"}}, 0)
	})
	st := tufStatement(t, w, "named-request-0001")
	r, err := w.svc.Open(context.Background(), client.OpenInput{PayloadType: attest.PayloadType, Payload: base64.StdEncoding.EncodeToString(st), Signature: sign(t, w.dev, attest.PayloadType, st)})
	must(t, err)
	v, err := w.client.Get(context.Background(), r.ID)
	must(t, err)
	if v.KeyNames[dev] != (policy.KeyName{Name: "dev-one", Owner: "one@example.com"}) || v.KeyNames[dev2].Name != "dev-two" {
		t.Fatalf("view names %v", v.KeyNames)
	}
	// dev2 leaves the role (its name goes with it in the new version).
	publish(func(d *author.Draft) error { return d.SetRole("originator", []*keys.PublicKey{w.dev.Public()}, 1, 0) })
	if _, ok := w.svc.Trust().KeyNames[dev2]; ok {
		t.Fatal("the enforced policy still names a key it no longer holds")
	}
	v, err = w.client.Get(context.Background(), r.ID)
	must(t, err)
	if v.KeyNames[dev].Name != "dev-one" || v.KeyNames[dev2].Name != "dev-two" {
		t.Fatalf("after dev2 left: view names %v, want dev-one (enforced) and dev-two (the request's version)", v.KeyNames)
	}
	list, err := w.client.List(context.Background(), "", 0)
	must(t, err)
	if len(list) != 1 || list[0].KeyNames[dev].Name != "dev-one" {
		t.Fatalf("listing %+v", list)
	}
	if _, ok := list[0].KeyNames[dev2]; ok {
		t.Errorf("a listing read an earlier version for names: %v", list[0].KeyNames)
	}
}
