package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
	"github.com/quorate-dev/quorate/signer"
	"github.com/quorate-dev/quorate/signer/pgstore"
)

func openPostgres(ctx context.Context, url string, log *zap.Logger, lg *ledger.Log, hooks *notify.Config, observe func(signer.BatchStats), clock func() time.Time) (signer.Store, error) {
	return pgstore.Open(ctx, url, pgstore.Options{Logger: log, Ledger: lg, Webhooks: hooks, BatchObserver: observe, Clock: clock})
}

func (a *app) migrateCommand() *cobra.Command {
	var store string
	c := &cobra.Command{
		Use:   "migrate --store postgres://...",
		Short: "Apply the PostgreSQL store's schema migrations",
		Long: `Apply the versioned schema migrations of the PostgreSQL store (serve also
applies them at start). It refuses a database whose schema is newer than this
binary knows. The embedded SQLite store migrates itself when opened.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if store == "" {
				return usageErr("--store postgres://... is required")
			}
			if err := pgstore.Migrate(cmd.Context(), store); err != nil {
				return err
			}
			a.errf("schema up to date\n")
			return nil
		},
	}
	c.Flags().StringVar(&store, "store", "", "PostgreSQL URL")
	return c
}
