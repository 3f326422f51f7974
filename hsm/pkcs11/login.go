//go:build cgo

package pkcs11

import (
	"fmt"
	"sync"
)

// PKCS#11 keeps one login per token and process: once any caller in the
// process has logged in, C_Login answers CKR_USER_ALREADY_LOGGED_IN whatever
// PIN it is given, and crypto11 takes that answer as success. A PIN can
// therefore be checked only by the first login. logins remembers, for the
// whole process, which PIN (as a hash) opened each token, so that a later
// context with another PIN is refused instead of let in by the earlier
// login.
//
// This is the one piece of package state besides the registry pattern, and
// it exists because the state it mirrors (the token login, and crypto11's own
// table of loaded modules) is per process too.
var logins = struct {
	mu sync.Mutex
	m  map[loginKey]*loginRecord
}{m: map[loginKey]*loginRecord{}}

type loginKey struct {
	module string
	slot   uint
	serial string
}

type loginRecord struct {
	pin  [32]byte
	refs int
}

// loggedIn reports whether this process is logged in to the token in slot.
func (m *rawModule) loggedIn(slot uint) (bool, error) {
	sh, in, err := m.session(slot)
	if err != nil {
		return false, err
	}
	m.ctx.CloseSession(sh)
	return in, nil
}

// checkLogin decides whether a context may be opened on the token with the
// PIN hashed as pin, given whether the process is already logged in to it.
// The caller holds logins.mu.
func checkLogin(k loginKey, pin [32]byte, alreadyLoggedIn bool, ti tokenInfo) error {
	rec := logins.m[k]
	switch {
	case rec != nil && rec.pin != pin:
		return fmt.Errorf("%w %s: the token is already open in this process with a different PIN (PKCS#11 keeps one login per token and process, so this PIN cannot be checked)", ErrWrongPIN, ti)
	case rec == nil && alreadyLoggedIn:
		return fmt.Errorf("%w %s: something else in this process is logged in to the token, so this PIN cannot be checked", ErrWrongPIN, ti)
	}
	return nil
}

// holdLogin records a context opened with pin. The caller holds logins.mu.
func holdLogin(k loginKey, pin [32]byte) {
	if rec := logins.m[k]; rec != nil {
		rec.refs++
		return
	}
	logins.m[k] = &loginRecord{pin: pin, refs: 1}
}

// dropLogin forgets one context on the token.
func dropLogin(k loginKey) {
	logins.mu.Lock()
	defer logins.mu.Unlock()
	if rec := logins.m[k]; rec != nil {
		if rec.refs--; rec.refs <= 0 {
			delete(logins.m, k)
		}
	}
}
