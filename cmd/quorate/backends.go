package main

import (
	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/hsm/kms"
	"github.com/quorate-dev/quorate/hsm/pkcs11"
)

// registerBackends adds the key backends compiled into this build besides
// file: — PKCS#11 (which, built without cgo, answers that it is missing)
// and the KMS providers.
func registerBackends(r *hsm.Registry) {
	pkcs11.Register(r)
	kms.Register(r)
}
