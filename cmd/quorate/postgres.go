package main

import (
	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/signer/pgstore"
)

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
