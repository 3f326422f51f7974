package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/quorate-dev/quorate/approval"
	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/keys/keyless"
	"github.com/quorate-dev/quorate/policy"
	"github.com/quorate-dev/quorate/signer/client"
)

// signRequest signs a request held by a coordinator. Everything shown and
// checked comes from the payload itself, which is what the signature covers,
// never from the coordinator's summary of it; who has signed and who is
// missing come from the coordinator.
func (a *app) signRequest(ctx context.Context, cf *clientFlags, id string, sf signFlags, artifacts []string, img *imageFlags, allowExtra bool) (*signResult, error) {
	if sf.uri == "" {
		return nil, usageErr("--key URI is required")
	}
	cl, err := a.client(cf)
	if err != nil {
		return nil, err
	}
	v, err := cl.Get(ctx, id)
	if err != nil {
		return nil, describeAPIError(err)
	}
	payload, err := attest.DecodeBase64(v.Payload)
	if err != nil {
		return nil, fmt.Errorf("request %s: payload: %w", id, err)
	}
	check := approval.Presign{ID: id, PayloadType: v.PayloadType, Payload: payload, Now: a.now()}
	if sf.trustDir != "" {
		if check.Trust, err = a.loadTrust(sf.trustDir, "", a.now()); err != nil {
			return nil, err
		}
	}
	if len(artifacts)+len(img.refs) > 0 {
		set, err := a.resolve(ctx, artifacts, nil, img)
		if err != nil {
			return nil, err
		}
		check.Artifacts = set.Artifacts
	}
	ok, err := approval.CheckRequest(check)
	if err != nil {
		return nil, err
	}
	st, pred := ok.Statement, ok.Predicate
	if extra := ok.Extra; len(extra) > 0 {
		if !allowExtra {
			return nil, withKind(policy.ErrSubjectMismatch, fmt.Errorf("refusing to sign: request %s has %d subject(s) besides the artifacts and images given, %s (pass --allow-extra-subjects to approve them too)", id, len(extra), describeSubjects(extra)))
		}
		a.errf("WARNING: request %s also approves %d subject(s) you did not give with --artifact or --image:\n", display.String(id), len(extra))
		for _, s := range extra {
			a.errf("  EXTRA SUBJECT  %s\n", describeSubjects([]attest.Subject{s}))
		}
	}
	env := &attest.Envelope{PayloadType: v.PayloadType, Payload: v.Payload}
	for _, s := range v.Signatures {
		env.Signatures = append(env.Signatures, attest.Signature{KeyID: s.KeyID})
	}
	a.describe(st, pred, env)
	if v.Requester != "" {
		a.errf("  requester: %s\n", labels([]string{v.Requester}, v.KeyNames))
	}
	a.showProgress("roles (from the coordinator)", v.Progress, v.KeyNames)
	s, err := a.registry.Signer(ctx, sf.uri)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	if _, err := a.checkRole(check.Trust, pred, s.Public(), sf); err != nil {
		return nil, err
	}
	keyID := s.Public().ID()
	if sf.certChain != "" { // keyless: the keyid carries the certificate chain
		chain, err := readCertChain(sf.certChain, s.Public())
		if err != nil {
			return nil, err
		}
		keyID = keyless.EncodeKeyID(chain)
	}
	if err := a.confirmSigning(sf); err != nil {
		return nil, err
	}
	raw, err := s.Sign(ctx, dsse.PAE(v.PayloadType, payload))
	if err != nil {
		return nil, fmt.Errorf("signing request %s: %w", id, err)
	}
	res, err := cl.Sign(ctx, id, attest.Signature{KeyID: keyID, Sig: base64.StdEncoding.EncodeToString(raw)})
	if err != nil {
		return nil, describeAPIError(err)
	}
	counted := res.Accepted || res.AlreadySigned
	out := &signResult{RequestID: id, KeyID: keyID, Role: res.Role, Counted: &counted, Recorded: res.Recorded,
		State: string(res.State), AlreadySigned: res.AlreadySigned, PolicyVersion: pred.Policy.Version, Progress: res.Progress}
	if sf.certChain != "" {
		out.KeyID = s.Public().ID() // the ephemeral key; the keyid sent carries its chain
	}
	if out.Recorded == nil { // an older coordinator: when it recorded the signature
		if nv, err := cl.Get(ctx, id); err == nil {
			for _, sv := range nv.Signatures {
				if sv.KeyID == keyID {
					at := sv.Received
					out.Recorded = &at
				}
			}
		}
	}
	status := progressLine(res.Progress)
	if res.Completed || res.State == client.Complete {
		status = "complete: the composite attestation is ready"
	}
	if res.AlreadySigned {
		// A retry or a second click: success, nothing new stored or counted.
		at := "earlier"
		if res.Recorded != nil {
			at = "at " + res.Recorded.UTC().Format(time.RFC3339)
		}
		a.errf("key %s already signed request %s as %s (recorded %s); that signature counts, nothing new was recorded; %s\n", display.String(v.KeyNames.Label(s.Public().ID())), id, res.Role, at, status)
		return out, nil
	}
	a.errf("signed request %s as %s with key %s; %s\n", id, res.Role, display.String(v.KeyNames.Label(s.Public().ID())), status)
	return out, nil
}

// describeSubjects lists subjects, escaped, with every digest they carry.
func describeSubjects(subjects []attest.Subject) string {
	parts := make([]string, len(subjects))
	for i, s := range subjects {
		name := display.String(s.Name)
		if name == "" {
			name = "(unnamed)"
		}
		var ds []string
		for _, alg := range slices.Sorted(maps.Keys(s.Digest)) {
			ds = append(ds, display.String(alg)+":"+display.String(s.Digest[alg]))
		}
		parts[i] = name + " " + strings.Join(ds, " ")
	}
	return strings.Join(parts, ", ")
}
