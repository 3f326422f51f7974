// Package notify tells people what waits for them: it turns the ledger's
// events into signed webhook deliveries (generic JSON, Slack, Microsoft
// Teams), delivers them at least once through a durable outbox, and sends
// reminders while a request waits on a role.
//
// # Pieces
//
//   - [Config], from [LoadConfig]: the endpoints, each with a URL, a
//     [Format], filters (event types, gates), a [Secret] read from a file
//     or the environment, and per-gate [Reminder] times. Bad configuration
//     is refused with an error naming the endpoint.
//   - [Message]: one notification (the generic JSON body): the event, its
//     log index, a ledger bundle proving its inclusion against a signed
//     checkpoint, and who the request still waits on ([Waiting]).
//   - [Sign], [SetHeaders] and [Verify]: the Standard Webhooks scheme
//     (webhook-id = the log index, webhook-timestamp, webhook-signature
//     "v1,<base64 HMAC-SHA256>"). Receivers use [Verify] with a tolerance
//     window and drop webhook-ids they have seen.
//   - [Render]: the body per format; every string that came from a request
//     is escaped for its target ([SlackEscape], [TeamsEscape]).
//   - [Outbox]: the storage contract the stores implement, writing rows in
//     the transaction of the event ([Fanout]); its conformance suite is
//     [github.com/quorate-dev/quorate/notify/outboxtest.TestOutbox].
//   - [Dispatcher]: claims deliveries under a lease, posts them, retries
//     with exponential [Backoff] and jitter, dead-letters after a bound,
//     keeps the order per request, and records [Metrics].
//   - [Reminders] and [Scheduler]: reminders when a request waited on a
//     role longer than the gate's time, and once before it expires.
//
// # Status
//
// This package is self-contained: the coordinator wires it in (the outbox
// tables in the SQLite and PostgreSQL stores, serve --webhooks, the SSE
// stream /v1/events) after the refactor of issue 12. docs/notifications.md
// documents formats, the signature scheme and retries.
package notify
