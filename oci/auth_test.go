package oci_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/quorate-dev/quorate/internal/registrytest"
	"github.com/quorate-dev/quorate/oci"
)

// Against the real registry over HTTPS (its self-signed certificate trusted
// through the transport, no Insecure) with basic authentication, credentials
// come from the Docker config as authn.DefaultKeychain reads it: an auths
// entry, or a credential helper program on PATH.
func TestDockerConfigKeychain(t *testing.T) {
	const user, pass = "ci", "s3cret"
	reg := registrytest.StartWith(t, registrytest.Options{TLS: true, Username: user, Password: pass})
	ctx := ctxT(t)
	r, err := name.ParseReference(reg.Repo("app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithTransport(reg.Transport()), remote.WithAuth(&authn.Basic{Username: user, Password: pass})); err != nil {
		t.Fatalf("pushing: %v", err)
	}
	want := digestOf(t, img)

	helperDir := t.TempDir()
	helper := fmt.Sprintf("#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\nprintf '{\"ServerURL\":\"%%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}' \"$server\"\n", user, pass)
	if err := os.WriteFile(filepath.Join(helperDir, "docker-credential-quoratetest"), []byte(helper), 0o700); err != nil {
		t.Fatal(err)
	}
	basic := func(u, p string) string { return base64.StdEncoding.EncodeToString([]byte(u + ":" + p)) }

	for _, tc := range []struct {
		name   string
		config string
		ok     bool
	}{
		{"auths entry", fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host, basic(user, pass)), true},
		{"credential helper", fmt.Sprintf(`{"credHelpers":{%q:"quoratetest"}}`, reg.Host), true},
		{"no credentials", `{}`, false},
		{"wrong password", fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host, basic(user, "nope")), false},
		{"credentials for another registry", fmt.Sprintf(`{"auths":{"127.0.0.2:5000":{"auth":%q}}}`, basic(user, pass)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			dockerDir := filepath.Join(home, ".docker")
			if err := os.Mkdir(dockerDir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dockerDir, "config.json"), []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("HOME", home)
			t.Setenv("DOCKER_CONFIG", dockerDir)
			t.Setenv("XDG_CONFIG_HOME", home)
			t.Setenv("XDG_RUNTIME_DIR", "")
			t.Setenv("REGISTRY_AUTH_FILE", "")
			t.Setenv("PATH", helperDir+string(os.PathListSeparator)+os.Getenv("PATH"))

			c := oci.New(oci.Options{Transport: reg.Transport()})
			got, err := c.Resolve(ctx, reg.Repo("app:v1"))
			if !tc.ok {
				if err == nil {
					t.Fatalf("Resolve succeeded without valid credentials: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got.Digest != want {
				t.Fatalf("Resolve = %s, want %s", got.Digest, want)
			}
			// Pushing and reading referrers use the same credentials.
			if _, err := c.Attach(ctx, got, envelope(t, "production", got.Subject()), nil); err != nil {
				t.Fatalf("Attach: %v", err)
			}
			found, err := c.Find(ctx, got)
			if err != nil || len(found.Referrers) != 1 || len(found.Rejected) != 0 {
				t.Fatalf("Find = %+v, %v", found, err)
			}
		})
	}
}
