//go:build !quorate_no_hashivault

package kms

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/quorate-dev/quorate/hsm"
	"github.com/quorate-dev/quorate/keys"
)

// transitServer is a loopback stand-in for the part of Vault's transit
// engine sigstore's hashivault provider calls (read key, sign). It lets the
// real provider code (Vault API client, JSON, "vault:v1:" framing) run in
// tests; it is not Vault.
type transitServer struct {
	token string
	keys  map[string]crypto.Signer
	signs atomic.Int64
}

func (ts *transitServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Vault-Token") != ts.token {
		http.Error(w, `{"errors":["permission denied"]}`, http.StatusForbidden)
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/transit/"), "/")
	if len(parts) < 2 {
		http.NotFound(w, r)
		return
	}
	key, ok := ts.keys[parts[1]]
	if !ok {
		http.Error(w, `{"errors":["no such key"]}`, http.StatusNotFound)
		return
	}
	reply := func(data any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"data": data})
	}
	switch {
	case parts[0] == "keys" && r.Method == http.MethodGet:
		var pubStr, name string
		switch p := key.Public().(type) {
		case ed25519.PublicKey:
			pubStr, name = base64.StdEncoding.EncodeToString(p), "ed25519"
		default:
			der, _ := x509.MarshalPKIXPublicKey(p)
			pubStr, name = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "ecdsa"
		}
		reply(map[string]any{"latest_version": 1, "keys": map[string]any{"1": map[string]any{"public_key": pubStr, "name": name}}})
	case parts[0] == "sign" && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		var req struct {
			Input     string `json:"input"`
			Prehashed bool   `json:"prehashed"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"errors":["bad request"]}`, http.StatusBadRequest)
			return
		}
		in, _ := base64.StdEncoding.DecodeString(req.Input)
		var sig []byte
		var err error
		switch k := key.(type) {
		case ed25519.PrivateKey:
			sig = ed25519.Sign(k, in)
		case *ecdsa.PrivateKey:
			if !req.Prehashed || len(parts) != 3 {
				http.Error(w, `{"errors":["test server wants prehashed ECDSA input"]}`, http.StatusBadRequest)
				return
			}
			want := map[string]int{"sha2-256": sha256.Size, "sha2-384": sha512.Size384}[parts[2]]
			if len(in) != want {
				http.Error(w, `{"errors":["digest length does not match the hash"]}`, http.StatusBadRequest)
				return
			}
			sig, err = ecdsa.SignASN1(rand.Reader, k, in)
		}
		if err != nil {
			http.Error(w, `{"errors":["sign failed"]}`, http.StatusInternalServerError)
			return
		}
		ts.signs.Add(1)
		reply(map[string]any{"signature": "vault:v1:" + base64.StdEncoding.EncodeToString(sig)})
	default:
		http.NotFound(w, r)
	}
}

func TestHashiVaultProviderOverHTTP(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	ts := &transitServer{token: "test-token-abc", keys: map[string]crypto.Signer{"p256": p256, "p384": p384, "ed": ed}}
	srv := httptest.NewServer(ts)
	defer srv.Close()
	env := map[string]string{EnvVaultAddr: srv.URL, EnvVaultToken: ts.token}
	r := hsm.NewRegistry(hsm.Options{Getenv: func(k string) string { return env[k] }})
	Register(r)

	for _, tc := range []struct {
		key    string
		scheme string
	}{{"p256", keys.SchemeECDSAP256}, {"p384", keys.SchemeECDSAP384}, {"ed", keys.SchemeEd25519}} {
		t.Run(tc.key, func(t *testing.T) {
			s, err := r.Signer(ctx, "hashivault://"+tc.key)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Public().Scheme() != tc.scheme {
				t.Fatalf("scheme %s, want %s", s.Public().Scheme(), tc.scheme)
			}
			before := ts.signs.Load()
			msg := []byte("release through vault transit")
			sig, err := s.Sign(ctx, msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Public().Verify(msg, sig); err != nil {
				t.Fatal(err)
			}
			if ts.signs.Load() != before+1 {
				t.Fatal("the signature did not come from the server")
			}
		})
	}

	t.Run("wrong token", func(t *testing.T) {
		env2 := map[string]string{EnvVaultAddr: srv.URL, EnvVaultToken: "not-the-token"}
		r2 := hsm.NewRegistry(hsm.Options{Getenv: func(k string) string { return env2[k] }})
		Register(r2)
		_, err := r2.Signer(ctx, "hashivault://p256")
		if err == nil || !strings.Contains(err.Error(), "hashivault://p256") {
			t.Fatalf("Signer with a bad token: %v", err)
		}
		if strings.Contains(err.Error(), "not-the-token") {
			t.Fatalf("token leaked into %q", err)
		}
	})
	t.Run("missing key", func(t *testing.T) {
		_, err := r.Signer(ctx, "hashivault://absent")
		if err == nil || !strings.Contains(err.Error(), "hashivault://absent") {
			t.Fatalf("Signer on a missing key: %v", err)
		}
	})
	t.Run("bad reference", func(t *testing.T) {
		if _, err := r.Signer(ctx, "hashivault://a/b"); !errors.Is(err, ErrBadURI) {
			t.Fatalf("Signer on a bad reference: %v", err)
		}
	})
}
