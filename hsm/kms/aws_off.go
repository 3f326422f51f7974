//go:build quorate_no_awskms

package kms

func awsProvider() *provider { return nil }
