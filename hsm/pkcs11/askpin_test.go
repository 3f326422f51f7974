//go:build cgo

package pkcs11

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/quorate-dev/quorate/hsm"
)

// asker is an hsm.Options.AskPIN that answers from a list and records
// which tokens it was asked for.
type asker struct {
	mu      sync.Mutex
	answers []string
	asked   []string
}

func (a *asker) ask(_ context.Context, token string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked = append(a.asked, token)
	if len(a.answers) == 0 {
		return "", errors.New("no more answers")
	}
	pin := a.answers[0]
	a.answers = a.answers[1:]
	return pin, nil
}

// TestAskPIN: a key URI without a PIN asks hsm.Options.AskPIN, naming the
// token, once per token (a second key on it does not ask again); a wrong
// typed PIN is refused and asked again next time; without AskPIN the clear
// error stays; the typed PIN appears in no error, log line or URI.
func TestAskPIN(t *testing.T) {
	f := newToken(t)
	setup, _ := newBackend(t)
	if _, err := setup.Generate(ctx, f.uri("k1"), hsm.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	if _, err := setup.Generate(ctx, f.uri("k2"), hsm.Ed25519); err != nil {
		t.Fatal(err)
	}
	setup.Close()
	noPIN := func(object string) string {
		return "pkcs11:token=" + f.label + ";object=" + object + "?module-path=" + softhsm.module
	}

	t.Run("AskedOncePerToken", func(t *testing.T) {
		a := &asker{answers: []string{f.pin}}
		core, logs := observer.New(zap.DebugLevel)
		b := New(hsm.Options{Logger: zap.New(core), AskPIN: a.ask})
		defer b.Close()
		s1, err := b.Signer(ctx, noPIN("k1"))
		if err != nil {
			t.Fatal(err)
		}
		defer s1.Close()
		sign(t, s1, []byte("release"))
		s2, err := b.Signer(ctx, noPIN("k2"))
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		sign(t, s2, []byte("release"))
		if len(a.asked) != 1 || a.asked[0] != f.label {
			t.Fatalf("asked %q, want once for %q", a.asked, f.label)
		}
		var texts []string
		for _, e := range logs.All() {
			texts = append(texts, e.Message)
			for _, fl := range e.Context {
				texts = append(texts, fl.String)
			}
		}
		mustNotLeak(t, f.pin, append(texts, s1.(*Signer).name, s2.(*Signer).name)...)
	})

	t.Run("WrongPINRefusedThenAskedAgain", func(t *testing.T) {
		a := &asker{answers: []string{"wrong-" + f.pin, f.pin}}
		b := New(hsm.Options{AskPIN: a.ask})
		defer b.Close()
		_, err := b.Signer(ctx, noPIN("k1"))
		if !errors.Is(err, ErrWrongPIN) {
			t.Fatalf("got %v, want ErrWrongPIN", err)
		}
		mustNotLeak(t, f.pin, err.Error())
		s, err := b.Signer(ctx, noPIN("k1"))
		if err != nil {
			t.Fatalf("second try with the right PIN: %v", err)
		}
		s.Close()
		if len(a.asked) != 2 {
			t.Fatalf("asked %d times, want 2", len(a.asked))
		}
	})

	t.Run("EmptyAnswerRefused", func(t *testing.T) {
		b := New(hsm.Options{AskPIN: (&asker{answers: []string{""}}).ask})
		defer b.Close()
		if _, err := b.Signer(ctx, noPIN("k1")); !errors.Is(err, ErrWrongPIN) {
			t.Fatalf("got %v, want ErrWrongPIN", err)
		}
	})

	t.Run("GivenPINNotAsked", func(t *testing.T) {
		a := &asker{}
		b := New(hsm.Options{AskPIN: a.ask})
		defer b.Close()
		s, err := b.Signer(ctx, f.uri("k1"))
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if len(a.asked) != 0 {
			t.Fatalf("asked %q although pin-source was given", a.asked)
		}
	})

	t.Run("NoAskPINClearError", func(t *testing.T) {
		b := New(hsm.Options{})
		defer b.Close()
		_, err := b.Signer(ctx, noPIN("k1"))
		if !errors.Is(err, ErrBadURI) {
			t.Fatalf("got %v, want ErrBadURI", err)
		}
		mustContain(t, err, "no PIN", "pin-source", EnvPIN)
	})

	t.Run("InlinePINWarnedOnceWithoutThePIN", func(t *testing.T) {
		var warnings []string
		b := New(hsm.Options{Warn: func(m string) { warnings = append(warnings, m) }})
		defer b.Close()
		inline := noPIN("k1") + "&pin-value=" + url.PathEscape(f.pin)
		for range 2 {
			s, err := b.Signer(ctx, inline)
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
		}
		if len(warnings) != 1 {
			t.Fatalf("warnings %q, want one", warnings)
		}
		for _, w := range []string{"pin-value", "shell history", "process lists", "pin-source=file:", EnvPIN} {
			if !strings.Contains(warnings[0], w) {
				t.Errorf("warning %q does not mention %q", warnings[0], w)
			}
		}
		mustNotLeak(t, f.pin, warnings...)
	})
}
