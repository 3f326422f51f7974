package sigbundle

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/quorate-dev/quorate/attest"
	"github.com/quorate-dev/quorate/internal/limitread"
	"github.com/quorate-dev/quorate/keys"
)

// File is a bundle and the name it was read under.
type File struct {
	Name   string
	Bundle *Bundle
}

// ReadDir reads every regular file of dir whose name ends in [Extension],
// in file name order, each within l.MaxBytes, and at most l.MaxSignatures of
// them. Other files are ignored; a file so named that is not a bundle is an
// error naming it.
func ReadDir(dir string, l attest.Limits) ([]File, error) {
	l = l.OrDefault()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading bundle directory: %w", err)
	}
	var out []File
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), Extension) || !e.Type().IsRegular() {
			continue
		}
		if len(out) == l.MaxSignatures {
			return nil, fmt.Errorf("%w: more than %d bundles in %s", attest.ErrTooLarge, l.MaxSignatures, dir)
		}
		p := filepath.Join(dir, e.Name())
		data, err := limitread.ReadFile(p, l.MaxBytes)
		if errors.Is(err, limitread.ErrTooLarge) {
			return nil, fmt.Errorf("bundle: %w: %w", attest.ErrTooLarge, err)
		}
		if err != nil {
			return nil, fmt.Errorf("bundle: %w", err)
		}
		b, err := Parse(data, l)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", p, err)
		}
		out = append(out, File{Name: e.Name(), Bundle: b})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no *%s bundle in %s", Extension, dir)
	}
	return out, nil
}

// KeyLookup finds a public key by TUF key ID (for instance among the keys of
// the policy's roles). It reports false for a key ID it does not know.
type KeyLookup func(keyID string) (*keys.PublicKey, bool)

// KeysByID is a [KeyLookup] over ks.
func KeysByID(ks ...*keys.PublicKey) KeyLookup {
	m := make(map[string]*keys.PublicKey, len(ks))
	for _, k := range ks {
		m[k.ID()] = k
	}
	return func(id string) (*keys.PublicKey, bool) {
		k, ok := m[id]
		return k, ok
	}
}

// Collapsed records a bundle left out because an earlier one (by file name)
// was signed by the same key.
type Collapsed struct {
	File     string // the bundle left out
	KeptFile string // the bundle kept
	Identity string // the key identity both signatures are by (or the key ID, for a key the lookup does not know)
}

// Assembly is a composite envelope re-assembled from bundles.
type Assembly struct {
	Envelope  *attest.Envelope
	Collapsed []Collapsed
	// Unknown lists the files whose key ID the lookup does not know; their
	// signatures are in the envelope, unchecked.
	Unknown []string
}

// Assemble builds one DSSE envelope from files (see the package
// documentation): the payload they all carry, and one signature per key.
// With lookup nil, no signature is checked and duplicates collapse by key
// ID only.
func Assemble(files []File, lookup KeyLookup) (*Assembly, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: no bundle to assemble", attest.ErrMalformed)
	}
	first := files[0]
	env := &attest.Envelope{
		PayloadType: first.Bundle.PayloadType,
		Payload:     base64.StdEncoding.EncodeToString(first.Bundle.Payload),
	}
	pae, err := attest.PAE(env)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", first.Name, err)
	}
	a := &Assembly{Envelope: env}
	kept := map[string]string{} // identity (or key ID) -> file kept
	for _, f := range files {
		b := f.Bundle
		if b.PayloadType != first.Bundle.PayloadType || !bytes.Equal(b.Payload, first.Bundle.Payload) {
			return nil, fmt.Errorf("%w: %s and %s", ErrPayloadMismatch, first.Name, f.Name)
		}
		who := "keyid:" + b.KeyID
		if lookup != nil {
			if k, ok := lookup(b.KeyID); ok {
				if err := k.Verify(pae, b.Sig); err != nil {
					return nil, fmt.Errorf("bundle %s: %w", f.Name, err)
				}
				who = k.Identity().String()
			} else {
				a.Unknown = append(a.Unknown, f.Name)
			}
		}
		if prev, dup := kept[who]; dup {
			a.Collapsed = append(a.Collapsed, Collapsed{File: f.Name, KeptFile: prev, Identity: strings.TrimPrefix(who, "keyid:")})
			continue
		}
		kept[who] = f.Name
		env.Signatures = append(env.Signatures, b.Signature())
	}
	return a, nil
}
