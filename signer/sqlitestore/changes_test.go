package sqlitestore_test

import (
	"testing"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/signer/policychange"
	"github.com/quorate-dev/quorate/signer/signertest"
)

func TestChangeStore(t *testing.T) {
	signertest.TestChangeStore(t, func(t *testing.T, log *ledger.Log) policychange.Store {
		return openWithLog(t, log)
	})
}
