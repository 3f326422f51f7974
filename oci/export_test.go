package oci

import "net/http"

// Transport exposes the client's guarded base transport to the tests.
func Transport(c *Client) http.RoundTripper { return c.transport }
