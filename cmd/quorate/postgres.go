package main

import (
	"context"

	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/signer"
)

func openPostgres(ctx context.Context, url string, log *zap.Logger) (signer.Store, error) {
	return nil, usageErr("PostgreSQL store is not in this build yet")
}
