package keys

import (
	"encoding/json"
	"testing"
)

// FuzzClientData: checkClientData never panics, and what it accepts is a
// JSON object whose type, challenge and origin say what was asked.
func FuzzClientData(f *testing.F) {
	const challenge, origin = "n4bQgYhMfWWaL-qgxVrQFaO_TxsrC4Is0V1sFbDwCgg", "https://example.com"
	f.Add([]byte(`{"type":"webauthn.get","challenge":"` + challenge + `","origin":"` + origin + `","crossOrigin":false}`))
	f.Add([]byte(`{"type":"webauthn.get","challenge":"` + challenge + `","origin":"` + origin + `","type":"webauthn.create"}`))
	f.Add([]byte(`{"type":"webauthn.get","challenge":"` + challenge + `","origin":"` + origin + `","tokenBinding":{"status":"supported"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkClientData(data, challenge, []string{origin}) != nil {
			return
		}
		var cd struct {
			Type, Challenge, Origin string
			CrossOrigin             bool
		}
		if err := json.Unmarshal(data, &cd); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", data, err)
		}
		if cd.Type != "webauthn.get" || cd.Challenge != challenge || cd.Origin != origin || cd.CrossOrigin {
			t.Fatalf("accepted %q, which encoding/json reads as %+v", data, cd)
		}
	})
}
