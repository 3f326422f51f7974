// Package web holds the browser assets of quorate that are plain files:
// passkey.js (WebAuthn enrolment and approval) today. They are embedded so
// the console served by `quorate serve` and the browser tests use the same
// bytes; no build step produces them.
package web

import "embed"

// FS holds the assets, by file name.
//
//go:embed passkey.js
var FS embed.FS
