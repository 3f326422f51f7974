//go:build quorate_no_azurekms

package kms

func azureProvider() *provider { return nil }
