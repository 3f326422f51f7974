//go:build !cgo

package pkcs11

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/quorate-dev/quorate/hsm"
)

func TestNoCgo(t *testing.T) {
	r := hsm.NewRegistry(hsm.Options{})
	Register(r)
	uri := "pkcs11:token=t;object=k?module-path=/m.so&pin-value=secret-pin"
	ctx := context.Background()
	_, err1 := r.Signer(ctx, uri)
	_, err2 := r.PublicKey(ctx, uri)
	_, err3 := r.Generate(ctx, uri, hsm.ECDSAP256)
	_, err4 := r.List(ctx, uri)
	for _, err := range []error{err1, err2, err3, err4} {
		if !errors.Is(err, ErrNoCgo) {
			t.Fatalf("error %v, want ErrNoCgo", err)
		}
		if strings.Contains(err.Error(), "secret-pin") {
			t.Fatalf("PIN leaked into %q", err)
		}
	}
}
