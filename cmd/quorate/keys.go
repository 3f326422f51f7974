package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/internal/atomicfile"
	"github.com/quorate-dev/quorate/internal/display"
	"github.com/quorate-dev/quorate/keys"
)

const keyURIHelp = `Key URIs name where a private key lives; quorate only ever asks it to sign:
  pkcs11:token=LABEL;object=LABEL?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/path/to/pin
  awskms:///ARN, gcpkms://projects/…/cryptoKeyVersions/N, azurekms://VAULT.vault.azure.net/KEY, hashivault://KEY
  file:PATH   a PEM private key on disk. FOR DEVELOPMENT AND TESTS ONLY: anyone who
              can read the file can sign as you. Production roles should use an HSM or KMS.`

func (a *app) keysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create keys and show their IDs",
		Long:  "Create signing keys and show their TUF key IDs.\n\n" + keyURIHelp,
	}
	cmd.AddCommand(a.keysGenerate(), a.keysID(), a.keysPublic(), a.keysList())
	return cmd
}

func (a *app) keysGenerate() *cobra.Command {
	var uri, typ, output string
	c := &cobra.Command{
		Use:   "generate --key URI [--type TYPE] [--output json]",
		Short: "Create a key pair and print its key ID",
		Long: `Create a key pair at the key URI and print its TUF key ID on stdout.

For file:PATH, writes a PKCS#8 PEM private key (mode 0600) at PATH and the
public key at PATH.pub; it never overwrites an existing file. In an HSM the key
is created inside the token and marked non-extractable.

` + keyURIHelp,
		Example: "  quorate keys generate --key file:dev/alice.key --type ecdsa-p256",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if uri == "" {
				return usageErr("--key URI is required")
			}
			kt, err := hsm.ParseKeyType(typ)
			if err != nil {
				return usageErr("--type: %w", err)
			}
			pub, err := a.registry.Generate(cmd.Context(), uri, kt)
			if err != nil {
				return err
			}
			if hsm.Scheme(uri) == "file" {
				a.errf("warning: file: keys are for development only; production roles should use an HSM or KMS\n")
			}
			if output == "json" {
				return writeJSON(a.stdout, publicKeyInfo(pub, uri))
			}
			fmt.Fprintln(a.stdout, pub.ID())
			return nil
		},
	}
	c.Flags().StringVar(&uri, "key", "", "key URI to create (see 'quorate keys --help')")
	c.Flags().StringVar(&output, "output", "text", "text (the key ID) or json (key ID, type, URI)")
	names := make([]string, len(hsm.KeyTypes))
	for i, t := range hsm.KeyTypes {
		names[i] = string(t)
	}
	c.Flags().StringVar(&typ, "type", string(hsm.ECDSAP256), "key type: "+strings.Join(names, ", "))
	return c
}

// loadPublic reads a public key from a file or a key URI.
func (a *app) loadPublic(cmd *cobra.Command, fileOrURI string) (*keys.PublicKey, error) {
	if hsm.Scheme(fileOrURI) != "" && !fileExists(fileOrURI) {
		return a.registry.PublicKey(cmd.Context(), fileOrURI)
	}
	return keys.ReadFile(fileOrURI)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (a *app) keysID() *cobra.Command {
	var uri, output string
	c := &cobra.Command{
		Use:   "id (PUBFILE | --key URI)",
		Short: "Print the TUF key ID of a public key",
		Long: `Print the TUF key ID of a public key, read from a PEM or TUF key JSON file or
from any key URI. The key ID is what policies and signatures name.`,
		Example: "  quorate keys id alice.key.pub\n  quorate keys id --key 'pkcs11:token=ci;object=integrator?module-path=/usr/lib/softhsm/libsofthsm2.so'",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var src string
			switch {
			case len(args) == 1 && uri == "":
				src = args[0]
			case len(args) == 0 && uri != "":
				src = uri
			default:
				return usageErr("give a public key file or --key URI (one of them)")
			}
			k, err := a.loadPublic(cmd, src)
			if err != nil {
				return err
			}
			if output == "json" {
				info := publicKeyInfo(k, uri)
				if uri == "" {
					info.File = src
				}
				return writeJSON(a.stdout, info)
			}
			fmt.Fprintln(a.stdout, k.ID())
			return nil
		},
	}
	c.Flags().StringVar(&uri, "key", "", "key URI")
	c.Flags().StringVar(&output, "output", "text", "text (the key ID) or json (key ID, type, source)")
	return c
}

func (a *app) keysPublic() *cobra.Command {
	var uri, out, format, output string
	c := &cobra.Command{
		Use:   "public --key URI [--out FILE] [--format pem|tuf] [--output json]",
		Short: "Export a key's public half",
		Long: `Export the public half of the key at URI as PEM (default) or TUF key JSON.
With --output json, stdout carries an object with the key ID, its type, the
PEM and the TUF key record (and --out FILE, when given, still gets --format).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if uri == "" {
				return usageErr("--key URI is required")
			}
			k, err := a.registry.PublicKey(cmd.Context(), uri)
			if err != nil {
				return err
			}
			var data []byte
			switch format {
			case "pem":
				data = k.PEM()
			case "tuf":
				data, err = json.MarshalIndent(k.TUF(), "", "  ")
				if err != nil {
					return err
				}
				data = append(data, '\n')
			default:
				return usageErr("--format %q: want pem or tuf", format)
			}
			if output == "json" && out == "-" {
				return usageErr("--output json and --out - exclude each other (both are stdout)")
			}
			if out != "" && out != "-" {
				if err := atomicfile.Write(out, data, 0o644); err != nil {
					return err
				}
				a.errf("wrote %s (key ID %s)\n", out, k.ID())
			}
			if output == "json" {
				info := publicKeyInfo(k, uri)
				info.PEM, info.TUF, info.Out = string(k.PEM()), k.TUF(), out
				return writeJSON(a.stdout, info)
			}
			if out == "" || out == "-" {
				_, err = a.stdout.Write(data)
			}
			return err
		},
	}
	c.Flags().StringVar(&uri, "key", "", "key URI")
	c.Flags().StringVar(&out, "out", "", "write to FILE instead of stdout")
	c.Flags().StringVar(&format, "format", "pem", "pem or tuf")
	c.Flags().StringVar(&output, "output", "text", "text (the key in --format) or json (key ID, type, PEM and TUF record)")
	return c
}

func (a *app) keysList() *cobra.Command {
	var uri, output string
	c := &cobra.Command{
		Use:     "list --key URI",
		Short:   "List the usable keys in a token or key ring",
		Example: "  quorate keys list --key 'pkcs11:token=release?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:pin'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if uri == "" {
				return usageErr("--key URI is required")
			}
			infos, err := a.registry.List(cmd.Context(), uri)
			if err != nil {
				return err
			}
			if output == "json" {
				type row struct {
					URI   string `json:"uri"`
					Label string `json:"label,omitempty"`
					KeyID string `json:"keyid,omitempty"`
					Type  string `json:"type,omitempty"`
					Note  string `json:"note,omitempty"`
				}
				rows := []row{}
				for _, in := range infos {
					r := row{URI: in.URI, Label: in.Label, Note: in.Note}
					if in.Key != nil {
						r.KeyID, r.Type = in.Key.ID(), in.Key.Describe()
					}
					rows = append(rows, r)
				}
				return writeJSON(a.stdout, rows)
			}
			for _, in := range infos {
				id, typ := "-", "-"
				if in.Key != nil {
					id, typ = in.Key.ID(), in.Key.Describe()
				}
				fmt.Fprintf(a.stdout, "%s  %s  %s", id, typ, in.URI)
				if in.Note != "" {
					fmt.Fprintf(a.stdout, "  (%s)", in.Note)
				}
				fmt.Fprintln(a.stdout)
			}
			return nil
		},
	}
	c.Flags().StringVar(&uri, "key", "", "URI of the token or key ring")
	c.Flags().StringVar(&output, "output", "text", "text or json")
	return c
}

// keyInfo is the JSON output of keys generate, id and public.
type keyInfo struct {
	KeyID string `json:"keyid"`
	Type  string `json:"type"`
	// URI is the key URI (its PIN redacted), File the public key file read.
	URI  string `json:"uri,omitempty"`
	File string `json:"file,omitempty"`
	// keys public only: the PEM, the TUF key record, --out.
	PEM string `json:"pem,omitempty"`
	TUF any    `json:"tuf,omitempty"`
	Out string `json:"out,omitempty"`
}

func publicKeyInfo(k *keys.PublicKey, uri string) keyInfo {
	return keyInfo{KeyID: k.ID(), Type: k.Describe(), URI: hsm.Redact(uri)}
}

func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(display.NewWriter(w)) // C1 controls and bidi overrides as \u escapes
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
