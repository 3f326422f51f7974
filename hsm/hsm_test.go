package hsm_test

import (
	"strings"
	"testing"

	"github.com/quorate-dev/quorate/hsm"
)

func TestRedactHidesSecrets(t *testing.T) {
	cases := []struct{ name, uri, secret string }{
		{"pin-value in the query", "pkcs11:token=a;object=b?module-path=/m.so&pin-value=1234", "1234"},
		{"pin-value with a hash sign", "pkcs11:token=a?pin-value=ab#cd&module-path=/m.so", "cd"},
		{"pin-value in the path", "pkcs11:token=a;pin-value=s3cr3t;object=b", "s3cr3t"},
		{"upper-case attribute", "pkcs11:token=a?PIN-VALUE=9876", "9876"},
		{"password in a KMS URI", "hashivault://key?password=hunter2", "hunter2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := hsm.Redact(tc.uri)
			if strings.Contains(got, tc.secret) {
				t.Fatalf("Redact(%q) = %q still shows %q", tc.uri, got, tc.secret)
			}
			if !strings.Contains(got, "REDACTED") {
				t.Fatalf("Redact(%q) = %q does not mark the redaction", tc.uri, got)
			}
		})
	}
	if got := hsm.Redact("pkcs11:token=a;object=b?pin-source=file:/run/pin"); got != "pkcs11:token=a;object=b?pin-source=file:/run/pin" {
		t.Fatalf("a pin-source path is not secret, got %q", got)
	}
}
