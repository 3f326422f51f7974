package keys

import "context"

// Signer makes signatures with one private key whose public half it knows.
// It is quorate's one signing contract: hsm backends implement it (hsm.Signer
// embeds it and adds Close), and attest, the policy authoring package and
// the ledger sign through it, so none of them links a key backend.
//
// Sign signs message (not a digest) in the key's TUF scheme (see the package
// documentation) and returns a whole signature or an error. Implementations
// must be safe for concurrent use.
type Signer interface {
	// Public returns the public half of the key.
	Public() *PublicKey
	// Sign signs message in the key's scheme.
	Sign(ctx context.Context, message []byte) ([]byte, error)
}
