//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"

	"github.com/ThalesGroup/crypto11"
	p11 "github.com/miekg/pkcs11"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/keys"
)

// generatedIDLen is the CKA_ID length chosen when the URI gives object= only.
const generatedIDLen = 16

// Generate creates a key pair of type kt inside the token, under the label
// (object=) and/or ID (id=) in uri. The private key is sensitive and
// non-extractable and can only sign. Generate refuses a label or ID already
// used by a key in the token. Without id=, a random 16-byte ID is chosen.
func (b *Backend) Generate(ctx context.Context, uri string, kt hsm.KeyType) (*keys.PublicKey, error) {
	u, t, err := b.open(ctx, uri)
	if err != nil {
		return nil, err
	}
	defer b.release(t)
	if !u.HasKeySelector() {
		return nil, fmt.Errorf("%w %q: name the new key with object=LABEL and/or id=", ErrBadURI, u)
	}
	gen, err := generatorFor(kt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	id := u.ID
	if len(id) == 0 {
		id = make([]byte, generatedIDLen)
		if _, err := rand.Read(id); err != nil {
			return nil, fmt.Errorf("choosing a key ID: %w", err)
		}
	}
	var pub *keys.PublicKey
	err = t.do(ctx, "generating "+string(kt)+" key "+u.String(), func(c *crypto11.Context, _ uint64) error {
		objs, err := t.objects()
		if err != nil {
			return err
		}
		for _, o := range objs {
			if (u.Object != "" && o.label == u.Object) || bytes.Equal(o.id, id) {
				return fmt.Errorf("%w: %s: the token already holds %s; pick another object= and id=", ErrKeyExists, u, o)
			}
		}
		pubAttrs, privAttrs, err := keyTemplates(id, u.Object)
		if err != nil {
			return err
		}
		k, err := gen(ctx, t, c, pubAttrs, privAttrs)
		switch {
		case err == nil:
		case hasCode(err, p11.CKR_DEVICE_MEMORY):
			return fmt.Errorf("%w: %s: %w", ErrTokenFull, u, err)
		case unsupportedMechanism(err):
			return fmt.Errorf("%w: %s: the token cannot make %s keys: %w", ErrUnsupportedKeyType, u, kt, err)
		default:
			return fmt.Errorf("%s: generating %s key: %w", u, kt, err)
		}
		p, err := keys.FromCrypto(k)
		if err != nil {
			return fmt.Errorf("%s: %w", u, err)
		}
		pub = p
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pub, nil
}

// generateFunc makes a key pair in the token and returns its public half.
type generateFunc func(ctx context.Context, t *token, c *crypto11.Context, pub, priv crypto11.AttributeSet) (crypto.PublicKey, error)

func generatorFor(kt hsm.KeyType) (generateFunc, error) {
	ec := func(curve elliptic.Curve) generateFunc {
		return func(_ context.Context, _ *token, c *crypto11.Context, pub, priv crypto11.AttributeSet) (crypto.PublicKey, error) {
			k, err := c.GenerateECDSAKeyPairWithAttributes(pub, priv, curve)
			if err != nil {
				return nil, err
			}
			return k.Public(), nil
		}
	}
	rsaBits := func(bits int) generateFunc {
		return func(_ context.Context, _ *token, c *crypto11.Context, pub, priv crypto11.AttributeSet) (crypto.PublicKey, error) {
			k, err := c.GenerateRSAKeyPairWithAttributes(pub, priv, bits)
			if err != nil {
				return nil, err
			}
			return k.Public(), nil
		}
	}
	switch kt {
	case hsm.ECDSAP256:
		return ec(elliptic.P256()), nil
	case hsm.ECDSAP384:
		return ec(elliptic.P384()), nil
	case hsm.RSA2048:
		return rsaBits(2048), nil
	case hsm.RSA3072:
		return rsaBits(3072), nil
	case hsm.RSA4096:
		return rsaBits(4096), nil
	case hsm.Ed25519:
		// crypto11 v1.5 cannot make Ed25519 keys: CKM_EC_EDWARDS_KEY_PAIR_GEN
		// directly, with the same templates.
		return func(ctx context.Context, t *token, _ *crypto11.Context, pub, priv crypto11.AttributeSet) (crypto.PublicKey, error) {
			k, err := t.generateEd25519(ctx, pub.ToSlice(), priv.ToSlice())
			if err != nil {
				return nil, err
			}
			return k, nil
		}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupportedKeyType, kt)
}

// keyTemplates returns the attribute templates for a signing key pair:
// the private half sensitive, non-extractable, private, sign-only.
func keyTemplates(id []byte, label string) (pub, priv crypto11.AttributeSet, err error) {
	pub, priv = crypto11.NewAttributeSet(), crypto11.NewAttributeSet()
	set := func(a crypto11.AttributeSet, t crypto11.AttributeType, v any) {
		if err == nil {
			err = a.Set(t, v)
		}
	}
	for _, a := range []crypto11.AttributeSet{pub, priv} {
		set(a, crypto11.CkaId, id)
		if label != "" {
			set(a, crypto11.CkaLabel, label)
		}
	}
	set(pub, crypto11.CkaVerify, true)
	set(pub, crypto11.CkaEncrypt, false)
	set(pub, crypto11.CkaWrap, false)
	set(priv, crypto11.CkaSign, true)
	set(priv, crypto11.CkaPrivate, true)
	set(priv, crypto11.CkaSensitive, true)
	set(priv, crypto11.CkaExtractable, false)
	set(priv, crypto11.CkaDecrypt, false)
	set(priv, crypto11.CkaUnwrap, false)
	set(priv, crypto11.CkaDerive, false)
	return pub, priv, err
}

// List lists the key pairs in the token uri names, as URIs that open them.
// Keys this backend cannot use are listed with Key nil and a Note saying why.
func (b *Backend) List(ctx context.Context, uri string) ([]hsm.KeyInfo, error) {
	u, t, err := b.open(ctx, uri)
	if err != nil {
		return nil, err
	}
	defer b.release(t)
	var out []hsm.KeyInfo
	err = t.do(ctx, "listing keys in "+u.String(), func(c *crypto11.Context, _ uint64) error {
		objs, err := t.objects()
		if err != nil {
			return fmt.Errorf("%s: %w", u, err)
		}
		out = out[:0]
		for _, o := range objs {
			if o.class != p11.CKO_PRIVATE_KEY || !o.fits(u) {
				continue
			}
			ku := u.WithKey(o.label, o.id)
			info := hsm.KeyInfo{URI: ku.Public(), Label: o.label}
			_, pub, err := t.findKey(c, ku)
			switch {
			case err == nil:
				info.Key = pub
			case sessionLost(err):
				return err
			default:
				info.Note = err.Error()
			}
			out = append(out, info)
		}
		return nil
	})
	return out, err
}
