package policy

import (
	"fmt"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/quorate-dev/quorate/keys/keyless"
	"github.com/quorate-dev/quorate/roles"
)

// Custom fields of targets.json's "signed" for keyless signers.
const (
	// IdentitiesField maps a role name to the keyless identities it lists,
	// besides its keys: [{"issuer": ISSUER, "subject": SUBJECT-OR-PATTERN}].
	IdentitiesField = "identities"
	// FulcioField lists the Fulcio certificate authorities keyless
	// certificates must chain to ([keyless.Record]), as read from a
	// Sigstore trusted_root.json by 'quorate policy fulcio'.
	FulcioField = "fulcio"
)

// readKeyless adds the identities and Fulcio authorities of targets to set.
func readKeyless(targets *metadata.Metadata[metadata.TargetsType], set *roles.Set) error {
	var ids map[string][]keyless.Identity
	if err := customField(targets, IdentitiesField, &ids); err != nil {
		return err
	}
	for name, list := range ids {
		r, ok := set.Roles[name]
		if !ok {
			return fmt.Errorf("%s: %w: identities are listed for unknown role %q", TargetsFile, ErrInvalidPolicy, name)
		}
		r.Identities = list
	}
	var recs []keyless.Record
	if err := customField(targets, FulcioField, &recs); err != nil {
		return err
	}
	for i, rec := range recs {
		a, err := rec.Authority()
		if err != nil {
			return fmt.Errorf("%s: %w: fulcio authority %d: %w", TargetsFile, ErrMalformed, i, err)
		}
		set.Fulcio = append(set.Fulcio, a)
	}
	return nil
}
