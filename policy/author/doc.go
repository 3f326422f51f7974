// Package author writes quorate policies: it creates a trust directory
// ([Init]), opens it for editing ([OpenDraft]), changes roles, gates, the
// administrators, the online key, the log key and key lifecycle (retire,
// revoke), signs the new versions with any [keys.Signer] and saves them
// with their history. It also checks what a coordinator accepts when
// policy signers sign a policy change ([VerifyPolicySignature],
// [CheckOnlineKey]) and describes a change ([Diff]).
//
// Reading and verifying a policy is package policy's job; this package is
// what a policy author or the coordinator's policy-change flow links, and
// a verifier never needs it. Like policy it links no key backend: signing
// goes through the [keys.Signer] contract.
//
// A [Draft] is not safe for concurrent use.
package author
