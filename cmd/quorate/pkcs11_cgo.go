//go:build cgo

package main

// pkcs11Built says whether this build can use PKCS#11 modules (it needs cgo).
const pkcs11Built = true
