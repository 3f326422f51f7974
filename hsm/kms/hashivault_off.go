//go:build quorate_no_hashivault

package kms

func vaultProvider() *provider { return nil }
