//go:build cgo

package pkcs11

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	p11 "github.com/miekg/pkcs11"
)

// PKCS#11 3.0 constants miekg/pkcs11 v1.1 does not name.
const (
	ckkECEdwards = 0x40
)

// rawModule is a plain miekg/pkcs11 handle on a module, for what crypto11
// does not offer: listing tokens and key objects. Use it only under
// Backend.modMu, which also guards crypto11.Configure and Context.Close, so
// that our C_Initialize/C_Finalize never race with crypto11's.
type rawModule struct {
	path     string
	ctx      *p11.Ctx
	finalize bool // we initialised the module, so we finalise it
}

// checkModule reports a missing or unreadable module path clearly, before
// dlopen turns it into a bare "failed to open module".
func checkModule(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: %s does not exist (check module-path= or %s)", ErrModuleNotFound, path, EnvModule)
	case err != nil:
		return fmt.Errorf("%w: %s: %w", ErrModuleNotFound, path, err)
	case fi.IsDir():
		return fmt.Errorf("%w: %s is a directory, not a shared library", ErrModuleNotFound, path)
	}
	return nil
}

func openRaw(path string) (*rawModule, error) {
	if err := checkModule(path); err != nil {
		return nil, err
	}
	ctx := p11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("%w: %s could not be loaded (not a PKCS#11 library for this platform?)", ErrModuleLoad, path)
	}
	m := &rawModule{path: path, ctx: ctx, finalize: true}
	if err := ctx.Initialize(); err != nil {
		if !hasCode(err, p11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			ctx.Destroy()
			return nil, fmt.Errorf("%w: %s: C_Initialize: %w", ErrModuleLoad, path, err)
		}
		m.finalize = false
	}
	return m, nil
}

func (m *rawModule) close() {
	if m.finalize {
		_ = m.ctx.Finalize()
	}
	m.ctx.Destroy()
}

// tokenInfo describes a token present in a slot.
type tokenInfo struct {
	slot                              uint
	label, serial, model, manufacture string
}

func (t tokenInfo) String() string {
	return fmt.Sprintf("%q (serial %s, slot %d)", t.label, t.serial, t.slot)
}

func (m *rawModule) tokens() ([]tokenInfo, error) {
	slots, err := m.ctx.GetSlotList(true)
	if err != nil {
		return nil, fmt.Errorf("listing slots of %s: %w", m.path, err)
	}
	out := make([]tokenInfo, 0, len(slots))
	for _, s := range slots {
		ti, err := m.ctx.GetTokenInfo(s)
		if err != nil {
			return nil, fmt.Errorf("reading token in slot %d of %s: %w", s, m.path, err)
		}
		if ti.Flags&p11.CKF_TOKEN_INITIALIZED == 0 {
			continue
		}
		out = append(out, tokenInfo{slot: s, label: ti.Label, serial: ti.SerialNumber, model: ti.Model, manufacture: ti.ManufacturerID})
	}
	return out, nil
}

// matches reports whether the token fits every token attribute of u.
func (t tokenInfo) matches(u *URI) bool {
	return (u.Token == "" || u.Token == t.label) &&
		(u.Serial == "" || u.Serial == t.serial) &&
		(u.Model == "" || u.Model == t.model) &&
		(u.Manufacturer == "" || u.Manufacturer == t.manufacture) &&
		(u.SlotID == nil || *u.SlotID == t.slot)
}

// findToken picks the one token u names, or explains what is there instead.
func findToken(toks []tokenInfo, u *URI) (tokenInfo, error) {
	var found []tokenInfo
	for _, t := range toks {
		if t.matches(u) {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return tokenInfo{}, fmt.Errorf("%w: %s (tokens present: %s)", ErrTokenNotFound, u, describeTokens(toks))
	default:
		return tokenInfo{}, fmt.Errorf("%w: %s matches %d tokens (%s); add serial= or slot-id=", ErrTokenNotFound, u, len(found), describeTokens(found))
	}
}

func describeTokens(toks []tokenInfo) string {
	if len(toks) == 0 {
		return "none"
	}
	s := make([]string, len(toks))
	for i, t := range toks {
		s[i] = t.String()
	}
	return strings.Join(s, ", ")
}

// object describes one key object in a token.
type object struct {
	class   uint
	keyType uint
	label   string
	id      []byte
}

func (o object) String() string {
	kind := "key"
	switch o.class {
	case p11.CKO_PRIVATE_KEY:
		kind = "private key"
	case p11.CKO_PUBLIC_KEY:
		kind = "public key"
	}
	return fmt.Sprintf("%s object=%q id=%s (%s)", kind, o.label, escapeAll(o.id), keyTypeName(o.keyType))
}

func keyTypeName(kt uint) string {
	switch kt {
	case p11.CKK_RSA:
		return "RSA"
	case p11.CKK_EC:
		return "EC"
	case ckkECEdwards:
		return "Ed25519/EdDSA"
	case p11.CKK_DSA:
		return "DSA"
	}
	return fmt.Sprintf("key type 0x%x", kt)
}

func (o object) fits(u *URI) bool {
	return (u.Object == "" || u.Object == o.label) && (len(u.ID) == 0 || bytes.Equal(u.ID, o.id))
}

// objects lists the private and public key objects in the token in slot. It
// must run while the application is logged in to the token (a crypto11
// context is open); it reports CKR_USER_NOT_LOGGED_IN otherwise, since the
// private keys would be hidden.
func (m *rawModule) objects(slot uint) ([]object, error) {
	sh, loggedIn, err := m.session(slot)
	if err != nil {
		return nil, fmt.Errorf("listing keys: %w", err)
	}
	defer m.ctx.CloseSession(sh)
	if !loggedIn {
		return nil, fmt.Errorf("listing keys: %w", p11.Error(p11.CKR_USER_NOT_LOGGED_IN))
	}
	var out []object
	for _, class := range []uint{p11.CKO_PRIVATE_KEY, p11.CKO_PUBLIC_KEY} {
		handles, err := findAll(m.ctx, sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, class)})
		if err != nil {
			return nil, fmt.Errorf("listing keys: %w", err)
		}
		for _, h := range handles {
			attrs, err := m.ctx.GetAttributeValue(sh, h, []*p11.Attribute{
				p11.NewAttribute(p11.CKA_LABEL, nil),
				p11.NewAttribute(p11.CKA_ID, nil),
				p11.NewAttribute(p11.CKA_KEY_TYPE, nil),
			})
			if err != nil {
				return nil, fmt.Errorf("reading key attributes: %w", err)
			}
			out = append(out, object{class: class, label: string(attrs[0].Value), id: attrs[1].Value, keyType: ulong(attrs[2].Value)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].label != out[j].label {
			return out[i].label < out[j].label
		}
		return bytes.Compare(out[i].id, out[j].id) < 0
	})
	return out, nil
}

// session opens a read-only session on slot and reports whether the process
// is logged in to the token. The caller closes the session.
func (m *rawModule) session(slot uint) (p11.SessionHandle, bool, error) {
	sh, err := m.ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION)
	if err != nil {
		return 0, false, fmt.Errorf("opening a session: %w", err)
	}
	si, err := m.ctx.GetSessionInfo(sh)
	if err != nil {
		m.ctx.CloseSession(sh)
		return 0, false, fmt.Errorf("reading session state: %w", err)
	}
	return sh, si.State == p11.CKS_RO_USER_FUNCTIONS || si.State == p11.CKS_RW_USER_FUNCTIONS, nil
}

func findAll(ctx *p11.Ctx, sh p11.SessionHandle, tmpl []*p11.Attribute) (handles []p11.ObjectHandle, err error) {
	if err := ctx.FindObjectsInit(sh, tmpl); err != nil {
		return nil, err
	}
	defer func() {
		if ferr := ctx.FindObjectsFinal(sh); err == nil {
			err = ferr
		}
	}()
	for {
		hs, _, err := ctx.FindObjects(sh, 64)
		if err != nil {
			return nil, err
		}
		if len(hs) == 0 {
			return handles, nil
		}
		handles = append(handles, hs...)
	}
}

// ulong decodes a CK_ULONG attribute value, which PKCS#11 hands over in the
// host's byte order.
func ulong(b []byte) uint {
	switch len(b) {
	case 8:
		return uint(binary.NativeEndian.Uint64(b))
	case 4:
		return uint(binary.NativeEndian.Uint32(b))
	}
	return 0
}

func describeObjects(objs []object) string {
	if len(objs) == 0 {
		return "no key objects"
	}
	s := make([]string, len(objs))
	for i, o := range objs {
		s[i] = o.String()
	}
	return strings.Join(s, "; ")
}
