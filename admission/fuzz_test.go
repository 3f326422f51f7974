package admission

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorate-dev/quorate/oci"
)

// noNetwork refuses every request: fuzzed image references must not reach
// arbitrary registries.
type noNetwork struct{}

func (noNetwork) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("no network in fuzzing")
}

// FuzzServeHTTP feeds arbitrary bodies to the handler: it never panics, and
// answers 200 only with a well-formed AdmissionReview.
func FuzzServeHTTP(f *testing.F) {
	for _, kind := range []string{"Pod", "Deployment", "CronJob"} {
		f.Add(reviewJSON(f, request(f, "shop", workloads(podSpec(initImg, appImg, unapprovedIm, ""), nil)[kind])))
	}
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":[{"name":"a","image":"x:1"}]}}}}`))
	f.Add([]byte(`{}`))
	cfg, err := ParseConfig([]byte(defaultConfig))
	if err != nil {
		f.Fatal(err)
	}
	h, err := New(Options{Config: cfg, Verifier: newTestVerifier(), Registry: oci.New(oci.Options{Transport: noNetwork{}}), Registerer: prometheus.NewRegistry(), MaxBodyBytes: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/validate/prod", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			allowed(t, rec.Body.Bytes()) // a well-formed AdmissionReview answer
		}
	})
}
