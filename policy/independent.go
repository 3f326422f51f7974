package policy

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/ledger/timestamp"
	"github.com/quorate-dev/quorate/ledger/witness"
)

// WitnessesField is the custom field of targets.json's "signed" naming the
// log's witnesses and their quorum, beside [LogField]:
//
//	"witnesses": {"quorum": 2, "witnesses": [{"name": "witness.example/w1", "vkey": "witness.example/w1+1a2b3c4d+BA…"}, …]}
//
// Verifiers learn the witnesses from signed policy, never from the
// coordinator.
const WitnessesField = "witnesses"

// TSAField is the custom field of targets.json's "signed" naming the
// trusted RFC 3161 timestamp authorities and how many must agree:
//
//	"tsa": {"quorum": 1, "authorities": [{"name": "tsa.example", "certificates": ["-----BEGIN CERTIFICATE-----…"]}, …]}
//
// Each authority's certificates are PEM: the self-signed ones are its
// roots, the others intermediates.
const TSAField = "tsa"

// Witness is one witness the policy names.
type Witness struct {
	Name string `json:"name"`
	VKey string `json:"vkey"`
}

// Witnesses is the witnessing the policy asks for.
type Witnesses struct {
	Quorum    int       `json:"quorum"`
	Witnesses []Witness `json:"witnesses"`
}

// TSA is one timestamp authority the policy trusts.
type TSA struct {
	Name         string   `json:"name"`
	Certificates []string `json:"certificates"`
}

// TSAs is the timestamping the policy asks for.
type TSAs struct {
	Quorum      int   `json:"quorum"`
	Authorities []TSA `json:"authorities"`
}

// ErrNoWitnesses is returned when the policy names no witnesses.
var ErrNoWitnesses = errors.New("the policy names no witnesses (quorate policy witness add)")

// ErrNoTSAs is returned when the policy names no timestamp authorities.
var ErrNoTSAs = errors.New("the policy names no timestamp authorities (quorate policy tsa add)")

// WitnessesOf reads the witnesses field of targets metadata as written
// (absent: a zero value, no error). Use [WitnessQuorumOf] to check it.
func WitnessesOf(targets *metadata.Metadata[metadata.TargetsType]) (Witnesses, error) {
	var w Witnesses
	err := customField(targets, WitnessesField, &w)
	return w, err
}

// WitnessQuorumOf returns the witness quorum the targets metadata names:
// every vkey parsed (Ed25519 cosignature/v1), names matching their vkeys,
// and a quorum between 1 and the number of witnesses. It returns
// [ErrNoWitnesses] when the policy names none.
func WitnessQuorumOf(targets *metadata.Metadata[metadata.TargetsType]) (*witness.Quorum, error) {
	w, err := WitnessesOf(targets)
	if err != nil {
		return nil, err
	}
	if len(w.Witnesses) == 0 {
		return nil, ErrNoWitnesses
	}
	return w.Check()
}

// Check checks w and returns it as a [witness.Quorum].
func (w Witnesses) Check() (*witness.Quorum, error) {
	vs := make([]*witness.Verifier, 0, len(w.Witnesses))
	for _, e := range w.Witnesses {
		v, err := witness.ParseVerifierKey(e.VKey)
		if err != nil {
			return nil, fmt.Errorf("%s: witness %q: %w", TargetsFile, e.Name, err)
		}
		if v.Name() != e.Name {
			return nil, fmt.Errorf("%s: %w: witness %q has a vkey named %q", TargetsFile, ErrMalformed, e.Name, v.Name())
		}
		vs = append(vs, v)
	}
	q, err := witness.NewQuorum(w.Quorum, vs...)
	if err != nil {
		return nil, fmt.Errorf("%s: witnesses: %w", TargetsFile, err)
	}
	return q, nil
}

// TSAsOf reads the tsa field of targets metadata as written (absent: a
// zero value, no error). Use [TSATrustOf] to check it.
func TSAsOf(targets *metadata.Metadata[metadata.TargetsType]) (TSAs, error) {
	var t TSAs
	err := customField(targets, TSAField, &t)
	return t, err
}

// TSATrustOf returns the timestamp trust the targets metadata names: each
// authority's certificates parsed (at least one self-signed root), and a
// quorum between 1 and the number of authorities. It returns [ErrNoTSAs]
// when the policy names none.
func TSATrustOf(targets *metadata.Metadata[metadata.TargetsType]) (*timestamp.Trust, error) {
	t, err := TSAsOf(targets)
	if err != nil {
		return nil, err
	}
	if len(t.Authorities) == 0 {
		return nil, ErrNoTSAs
	}
	return t.Check()
}

// Check checks t and returns it as a [timestamp.Trust].
func (t TSAs) Check() (*timestamp.Trust, error) {
	auths := make([]timestamp.Authority, 0, len(t.Authorities))
	for _, a := range t.Authorities {
		ta, err := TSAAuthority(a.Name, a.Certificates)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", TargetsFile, err)
		}
		auths = append(auths, ta)
	}
	tr, err := timestamp.NewTrust(t.Quorum, auths...)
	if err != nil {
		return nil, fmt.Errorf("%s: tsa: %w", TargetsFile, err)
	}
	return tr, nil
}

// TSAAuthority parses an authority's PEM certificates: self-signed ones
// are roots, the others intermediates; it needs at least one root.
func TSAAuthority(name string, pems []string) (timestamp.Authority, error) {
	a := timestamp.Authority{Name: name}
	if name == "" {
		return a, fmt.Errorf("%w: a timestamp authority has no name", ErrMalformed)
	}
	for i, p := range pems {
		rest := []byte(p)
		n := 0
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				return a, fmt.Errorf("%w: TSA %q: certificate %d: PEM block %q, want CERTIFICATE", ErrMalformed, name, i, b.Type)
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return a, fmt.Errorf("%w: TSA %q: certificate %d: %w", ErrMalformed, name, i, err)
			}
			n++
			if bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil {
				a.Roots = append(a.Roots, c)
			} else {
				a.Intermediates = append(a.Intermediates, c)
			}
		}
		if n == 0 || len(bytes.TrimSpace(rest)) != 0 {
			return a, fmt.Errorf("%w: TSA %q: certificate %d is not PEM certificates", ErrMalformed, name, i)
		}
	}
	if len(a.Roots) == 0 {
		return a, fmt.Errorf("%w: TSA %q: no self-signed root certificate among %d given (give the chain up to its root)", ErrMalformed, name, len(pems))
	}
	return a, nil
}

// Witnesses returns the witness quorum named by the trusted policy, or
// [ErrNoWitnesses].
func (t *Trust) Witnesses() (*witness.Quorum, error) { return WitnessQuorumOf(t.Targets) }

// TSAs returns the timestamp trust named by the trusted policy, or
// [ErrNoTSAs].
func (t *Trust) TSAs() (*timestamp.Trust, error) { return TSATrustOf(t.Targets) }
