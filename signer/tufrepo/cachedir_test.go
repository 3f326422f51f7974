package tufrepo_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorate-dev/quorate/signer/tufrepo"
)

func TestDefaultCacheDir(t *testing.T) {
	const url = "https://quorate.example.com"
	cases := []struct {
		name string
		env  map[string]string
		base string // "": ErrNoCacheHome
	}{
		{"XDG_CACHE_HOME first", map[string]string{"XDG_CACHE_HOME": "/xdg", "HOME": "/home/a"}, "/xdg"},
		{"else HOME/.cache", map[string]string{"HOME": "/home/a"}, "/home/a/.cache"},
		{"neither", map[string]string{}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tufrepo.DefaultCacheDir(func(k string) string { return tc.env[k] }, url)
			if tc.base == "" {
				if !errors.Is(err, tufrepo.ErrNoCacheHome) {
					t.Fatalf("err = %v, want ErrNoCacheHome", err)
				}
				return
			}
			if err != nil || got != tufrepo.CacheDir(tc.base, url) || !strings.HasPrefix(got, filepath.Join(tc.base, "quorate", "tuf-")) {
				t.Fatalf("DefaultCacheDir = %q, %v; want CacheDir(%q, url)", got, err, tc.base)
			}
		})
	}
	// A trailing slash names the same coordinator, another URL another cache.
	if tufrepo.CacheDir("/c", url+"/") != tufrepo.CacheDir("/c", url) || tufrepo.CacheDir("/c", url) == tufrepo.CacheDir("/c", "https://other.example") {
		t.Fatal("cache directories do not follow the coordinator URL")
	}
}
