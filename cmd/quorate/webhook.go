package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/ledger"
	"github.com/quorate-dev/quorate/notify"
)

// webhookCommand groups the webhook tools: send a signed sample to an
// endpoint, verify a delivery as a receiver, make a secret. The
// coordinator's own delivery (serve --webhooks) is wired after the refactor
// (docs/notifications.md).
func (a *app) webhookCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "webhook",
		Short: "Test webhook endpoints, verify deliveries, make secrets",
		Long: `Webhook deliveries are signed with the Standard Webhooks scheme
(webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256 over
id.timestamp.body>) with a per-endpoint secret "whsec_<base64>"; see
docs/notifications.md.`,
	}
	c.AddCommand(a.webhookTestCommand(), a.webhookVerifyCommand(), a.webhookSecretCommand(), a.webhookReceiveCommand())
	return c
}

func (a *app) webhookTestCommand() *cobra.Command {
	var config, endpoint, typ, output string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "test --config FILE --endpoint NAME",
		Short: "Send a signed sample notification to one endpoint",
		Long: `Send a signed sample notification (marked "sample": true, with no inclusion
proof) to the endpoint NAME of the webhook configuration FILE, in the endpoint's
format. Exit 0 when the receiver answered 2xx, 1 otherwise. With --output
json: {"delivered", "type", "endpoint", "format", "webhookId", "url"} (the
URL redacted as in the text).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if config == "" || endpoint == "" {
				return usageErr("--config and --endpoint are required")
			}
			cfg, err := notify.LoadConfig(config, a.getenv)
			if err != nil {
				return usageErr("%w", err)
			}
			ep := cfg.Endpoint(endpoint)
			if ep == nil {
				return usageErr("%s: no endpoint named %q", config, endpoint)
			}
			m, err := notify.SampleMessage(ledger.EventType(typ), a.now())
			if err != nil {
				return usageErr("--type: %w", err)
			}
			body, err := notify.Render(ep.Format, m)
			if err != nil {
				return err
			}
			client := &http.Client{Timeout: timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			if _, err := notify.Post(cmd.Context(), client, ep, m.ID, a.now(), body); err != nil {
				return fmt.Errorf("endpoint %s: %w", ep.Name, err)
			}
			if output == "json" {
				return writeJSON(a.stdout, webhookTestJSON{Delivered: true, Type: string(m.Type), Endpoint: ep.Name, Format: string(ep.Format), WebhookID: m.ID, URL: ep.Redacted()})
			}
			fmt.Fprintf(a.stdout, "delivered sample %s (%s, %s format, webhook-id %s) to %s\n", m.Type, ep.Name, ep.Format, m.ID, ep.Redacted())
			return nil
		},
	}
	c.Flags().StringVar(&config, "config", "", "webhook configuration file (JSON)")
	c.Flags().StringVar(&endpoint, "endpoint", "", "name of the endpoint to send to")
	c.Flags().StringVar(&typ, "type", string(ledger.RequestOpened), "event type of the sample")
	c.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the receiver")
	c.Flags().StringVar(&output, "output", "text", "text or json")
	return c
}

// webhookTestJSON is webhook test --output json.
type webhookTestJSON struct {
	Delivered bool   `json:"delivered"`
	Type      string `json:"type"`
	Endpoint  string `json:"endpoint"`
	Format    string `json:"format"`
	WebhookID string `json:"webhookId"`
	URL       string `json:"url"`
}

func (a *app) webhookVerifyCommand() *cobra.Command {
	var secretFile, secretEnv, headersFile, bodyFile, output string
	var tolerance time.Duration
	c := &cobra.Command{
		Use:   "verify (--secret-file FILE | --secret-env NAME) --headers FILE [--body FILE]",
		Short: "Verify a received delivery's Standard Webhooks signature",
		Long: `Verify a delivery as a receiver would: FILE holds the request's header lines
("webhook-id: 7", "webhook-timestamp: ...", "webhook-signature: v1,..."), the
body is read from --body or standard input, byte for byte. The timestamp must
be within --tolerance of now. Exit 0 and print the webhook-id when the signature
verifies; 1 otherwise. Receivers must still drop webhook-ids they have seen.
With --output json: {"verified": true, "webhookId"}.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (secretFile == "") == (secretEnv == "") || headersFile == "" {
				return usageErr("give --headers and one of --secret-file or --secret-env")
			}
			var text string
			if secretFile != "" {
				b, err := os.ReadFile(secretFile)
				if err != nil {
					return usageErr("secret: %w", err)
				}
				text = string(b)
			} else if text = a.getenv(secretEnv); text == "" {
				return usageErr("secret: environment variable %s is unset or empty", secretEnv)
			}
			secret, err := notify.ParseSecret(text)
			if err != nil {
				return usageErr("secret: %w", err)
			}
			hb, err := os.ReadFile(headersFile)
			if err != nil {
				return usageErr("headers: %w", err)
			}
			h, err := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(hb), strings.NewReader("\r\n\r\n")))).ReadMIMEHeader()
			if err != nil {
				return usageErr("headers %s: %w", headersFile, err)
			}
			var body []byte
			if bodyFile != "" {
				body, err = os.ReadFile(bodyFile)
			} else {
				body, err = io.ReadAll(io.LimitReader(a.stdin, 16<<20))
			}
			if err != nil {
				return usageErr("body: %w", err)
			}
			id, err := notify.Verify(secret, http.Header(h), body, a.now(), tolerance)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(a.stdout, struct {
					Verified  bool   `json:"verified"`
					WebhookID string `json:"webhookId"`
				}{true, id})
			}
			fmt.Fprintf(a.stdout, "verified: webhook-id %s\n", id)
			return nil
		},
	}
	c.Flags().StringVar(&secretFile, "secret-file", "", "file holding the endpoint's whsec_ secret")
	c.Flags().StringVar(&secretEnv, "secret-env", "", "environment variable holding the endpoint's whsec_ secret")
	c.Flags().StringVar(&headersFile, "headers", "", "file of the delivery's header lines")
	c.Flags().StringVar(&bodyFile, "body", "", "file of the delivery's body (default: standard input)")
	c.Flags().DurationVar(&tolerance, "tolerance", notify.DefaultTolerance, "largest accepted distance of webhook-timestamp from now")
	c.Flags().StringVar(&output, "output", "text", "text or json")
	return c
}

func (a *app) webhookSecretCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "secret",
		Short: "Print a new random endpoint secret (whsec_...)",
		Long: `Print a new random 32-byte secret in the Standard Webhooks text form; write it
to a file readable only by the coordinator and give the receiver the same text.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			s, err := notify.NewSecret()
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, s.Text())
			return nil
		},
	}
}
