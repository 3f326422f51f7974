package author

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/ledger/witness"
	"github.com/quorate-dev/quorate/policy"
)

// AddWitness names a witness of the transparency log (its name and Ed25519
// cosignature/v1 vkey, as the witness prints it) in a new policy version.
// The first witness gets quorum 1; raise it with [Draft.SetWitnessQuorum].
// A witness already named with the same vkey is an error, as is another
// witness with the same name or key.
func (d *Draft) AddWitness(name, vkey string, expiry time.Duration) error {
	v, err := witness.ParseVerifierKey(vkey)
	if err != nil {
		return err
	}
	if name == "" {
		name = v.Name()
	}
	if v.Name() != name {
		return fmt.Errorf("witness %q: the vkey names %q (a witness's name is part of its key ID)", name, v.Name())
	}
	return d.editWitnesses(expiry, func(w *policy.Witnesses) error {
		for _, e := range w.Witnesses {
			if e.Name == name {
				return fmt.Errorf("witness %q is already in the policy (remove it first to replace its key)", name)
			}
		}
		w.Witnesses = append(w.Witnesses, policy.Witness{Name: name, VKey: v.String()})
		if w.Quorum == 0 {
			w.Quorum = 1
		}
		return nil
	})
}

// RemoveWitness drops a witness from the policy. The quorum must still be
// reachable without it (lower it first); removing the last witness removes
// witnessing from the policy.
func (d *Draft) RemoveWitness(name string, expiry time.Duration) error {
	return d.editWitnesses(expiry, func(w *policy.Witnesses) error {
		i := slices.IndexFunc(w.Witnesses, func(e policy.Witness) bool { return e.Name == name })
		if i < 0 {
			return fmt.Errorf("witness %q is not in the policy", name)
		}
		w.Witnesses = slices.Delete(w.Witnesses, i, i+1)
		if len(w.Witnesses) > 0 && w.Quorum > len(w.Witnesses) {
			return fmt.Errorf("removing witness %q would leave %d witness(es) for a quorum of %d: lower the quorum first", name, len(w.Witnesses), w.Quorum)
		}
		return nil
	})
}

// SetWitnessQuorum sets how many of the policy's witnesses must cosign a
// checkpoint (1 to the number of witnesses).
func (d *Draft) SetWitnessQuorum(n int, expiry time.Duration) error {
	return d.editWitnesses(expiry, func(w *policy.Witnesses) error {
		if len(w.Witnesses) == 0 {
			return fmt.Errorf("the policy names no witnesses: add them before setting a quorum")
		}
		w.Quorum = n
		return nil
	})
}

func (d *Draft) editWitnesses(expiry time.Duration, change func(*policy.Witnesses) error) error {
	return d.editTargets(expiry, func(t *metadata.TargetsType) error {
		w, err := policy.WitnessesOf(&metadata.Metadata[metadata.TargetsType]{Signed: *t})
		if err != nil {
			return err
		}
		if err := change(&w); err != nil {
			return err
		}
		if len(w.Witnesses) == 0 {
			delete(t.UnrecognizedFields, policy.WitnessesField)
			return nil
		}
		if _, err := w.Check(); err != nil {
			return err
		}
		return setField(t, policy.WitnessesField, w)
	})
}

// AddTSA names a trusted RFC 3161 timestamp authority in a new policy
// version: its name and its certificates, PEM (the chain up to a
// self-signed root; the TSA's own certificate need not be given when its
// tokens embed it). The first TSA gets quorum 1.
func (d *Draft) AddTSA(name string, pems []string, expiry time.Duration) error {
	if _, err := policy.TSAAuthority(name, pems); err != nil {
		return err
	}
	return d.editTSAs(expiry, func(t *policy.TSAs) error {
		for _, a := range t.Authorities {
			if a.Name == name {
				return fmt.Errorf("timestamp authority %q is already in the policy (remove it first to replace its certificates)", name)
			}
		}
		t.Authorities = append(t.Authorities, policy.TSA{Name: name, Certificates: slices.Clone(pems)})
		if t.Quorum == 0 {
			t.Quorum = 1
		}
		return nil
	})
}

// RemoveTSA drops a timestamp authority from the policy, as
// [Draft.RemoveWitness] does a witness.
func (d *Draft) RemoveTSA(name string, expiry time.Duration) error {
	return d.editTSAs(expiry, func(t *policy.TSAs) error {
		i := slices.IndexFunc(t.Authorities, func(a policy.TSA) bool { return a.Name == name })
		if i < 0 {
			return fmt.Errorf("timestamp authority %q is not in the policy", name)
		}
		t.Authorities = slices.Delete(t.Authorities, i, i+1)
		if len(t.Authorities) > 0 && t.Quorum > len(t.Authorities) {
			return fmt.Errorf("removing timestamp authority %q would leave %d for a quorum of %d: lower the quorum first", name, len(t.Authorities), t.Quorum)
		}
		return nil
	})
}

// SetTSAQuorum sets how many distinct trusted TSAs must timestamp a
// checkpoint for its time to count.
func (d *Draft) SetTSAQuorum(n int, expiry time.Duration) error {
	return d.editTSAs(expiry, func(t *policy.TSAs) error {
		if len(t.Authorities) == 0 {
			return fmt.Errorf("the policy names no timestamp authorities: add them before setting a quorum")
		}
		t.Quorum = n
		return nil
	})
}

func (d *Draft) editTSAs(expiry time.Duration, change func(*policy.TSAs) error) error {
	return d.editTargets(expiry, func(t *metadata.TargetsType) error {
		a, err := policy.TSAsOf(&metadata.Metadata[metadata.TargetsType]{Signed: *t})
		if err != nil {
			return err
		}
		if err := change(&a); err != nil {
			return err
		}
		if len(a.Authorities) == 0 {
			delete(t.UnrecognizedFields, policy.TSAField)
			return nil
		}
		if _, err := a.Check(); err != nil {
			return err
		}
		return setField(t, policy.TSAField, a)
	})
}

// setField stores v as a custom field, in the generic JSON form the TUF
// library keeps unrecognized fields in.
func setField(t *metadata.TargetsType, name string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", name, err)
	}
	var generic any
	if err := json.Unmarshal(data, &generic); err != nil {
		return fmt.Errorf("encoding %s: %w", name, err)
	}
	t.UnrecognizedFields[name] = generic
	return nil
}
