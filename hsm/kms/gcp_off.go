//go:build quorate_no_gcpkms

package kms

func gcpProvider() *provider { return nil }
