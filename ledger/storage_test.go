package ledger_test

import (
	"testing"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/ledger/ledgertest"
)

func TestMemoryStorage(t *testing.T) {
	ledgertest.TestStorage(t, func(*testing.T) ledger.Storage { return ledger.NewMemoryStorage() })
}
