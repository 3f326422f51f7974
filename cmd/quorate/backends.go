package main

import "github.com/quorate-dev/quorate/hsm"

// registerBackends adds the key backends compiled into this build besides
// file: (PKCS#11 and KMS providers).
func registerBackends(r *hsm.Registry) {}
