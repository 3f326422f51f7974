package signer_test

import (
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"

	"github.com/quorate-dev/quorate/signer"
)

// TestOpenAPIListsEveryRoute: api/openapi.yaml lists exactly the routes the
// coordinator's API registers (read from the API itself, every optional
// endpoint on: metrics, events), method by method.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	var api *signer.API
	newWorld(t, func(c *signer.HTTPConfig) { c.Gatherer, c.Events = prometheus.NewRegistry(), http.NotFoundHandler() }, func(c *signer.HTTPConfig) {
		api = signer.NewAPI(*c) // the routes do not depend on which world serves them
	})
	// The web console (/ui/, HTML pages for people, signer/console) is not
	// part of the JSON API the spec describes.
	served := slices.DeleteFunc(api.Routes(), func(p string) bool { return strings.HasPrefix(p, "/ui/") })

	data, err := os.ReadFile("../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := yaml.Unmarshal(data, &spec); err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	var listed []string
	for path, item := range spec.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				listed = append(listed, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(listed)
	slices.Sort(served)
	for _, r := range served {
		if !slices.Contains(listed, r) {
			t.Errorf("served but not in api/openapi.yaml: %s", r)
		}
	}
	for _, r := range listed {
		if !slices.Contains(served, r) {
			t.Errorf("in api/openapi.yaml but not served: %s", r)
		}
	}
	if len(served) < 20 {
		t.Fatalf("only %d routes read from the API: %v", len(served), served)
	}
}
