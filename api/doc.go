// Package api is privnum's HTTP API: JSON over HTTP, versioned under /v1,
// calling the same services as the CLI (pool, binding, order, cdr; QR
// codes, callbacks, verifications and devices through the interfaces it
// declares).
// openapi.json (served at /openapi.json) describes it; the tests hold the
// server to it.
//
//	GET    /v1/numbers                       numbers   pool.List
//	POST   /v1/numbers                       numbers   pool.Add          Idempotency-Key
//	GET    /v1/numbers/{number}              numbers   pool.Get
//	POST   /v1/numbers/{number}/retire       numbers   pool.Retire
//	POST   /v1/numbers/{number}/restore      numbers   pool.Restore
//	POST   /v1/bindings                      bindings  binding.Create    Idempotency-Key
//	GET    /v1/bindings/{id}                 bindings  binding.Get
//	POST   /v1/bindings/{id}/extend          bindings  binding.Extend    Idempotency-Key
//	POST   /v1/bindings/{id}/release         bindings  binding.Release
//	POST   /v1/routes:resolve                bindings  binding.Resolve   (numbers in the body)
//	POST   /v1/orders                        orders    order.Open        Idempotency-Key
//	GET    /v1/orders/{id}                   orders    order.Get
//	POST   /v1/orders/{id}/complete          orders    order.Complete
//	POST   /v1/orders/{id}/cancel            orders    order.Cancel
//	GET    /v1/calls?limit=N                 calls     cdr.List
//	GET    /v1/calls/{id}/recording          calls     (Config.Recordings)     the file, streamed from Asterisk
//	GET    /v1/webhooks                      webhooks  (Config.Webhooks set)
//	POST   /v1/webhooks                      webhooks                    Idempotency-Key
//	GET    /v1/webhooks/{id}                 webhooks
//	DELETE /v1/webhooks/{id}                 webhooks
//	POST   /v1/qr-codes                      qr        (Config.QR set)   Idempotency-Key
//	GET    /v1/qr-codes/{token}              qr
//	DELETE /v1/qr-codes/{token}              qr
//	POST   /v1/qr-codes/{token}/scans        qr                          device policy
//	POST   /v1/callbacks                     callbacks      (Config.Callbacks)      Idempotency-Key, 202, device policy
//	GET    /v1/callbacks/{id}                callbacks
//	POST   /v1/verifications                 verifications  (Config.Verifications)  Idempotency-Key, 202
//	GET    /v1/verifications/{id}            verifications
//	POST   /v1/verifications/{id}/check      verifications
//	POST   /v1/devices                       devices        (Config.Devices)        201, token shown once
//	POST   /v1/devices/verify                devices
//	GET    /openapi.json, GET /healthz       public
//
// Every request passes the same steps: the API key (Authorization: Bearer
// or X-API-Key; 401 with WWW-Authenticate, 403 for a missing scope), the
// key's rate limit for the route's scope (apikey.Key.LimitFor, a token
// bucket in Redis at pn:rl:api:{KEY ID:SCOPE}; 429 rate-limited with limit
// "api_key", the scope and Retry-After), the
// body (at most 64 KiB, 413; application/json, 415; one JSON object with
// known fields only, 400), the Idempotency-Key if any, then the handler,
// which checks the fields (422, naming the field) before it calls a
// service. A refused request changes nothing but the rate-limit bucket. Errors are RFC 9457 problem
// details (see Problem).
//
// Durations are whole seconds in fields named *_seconds, matching the
// binding resource's max_duration_seconds. A pool exhausted for the
// requested parties is 409 pool-exhausted: it is a conflict with the
// current state for these parties (others may still bind), not an outage;
// 503 would make load balancers and retrying clients treat it as one.
//
// Real phone numbers never go in a URL: route resolution takes a JSON body,
// and only pool (virtual) numbers appear in paths. The access log records
// the route pattern, never the path, and the API key id, never the key.
//
// Callbacks and verifications are queued for the process holding call
// control, so their creates answer 202 Accepted with the resource (and a
// Location to poll). A verification's requester, for its per-requester
// rate limit, is the API key id: the per-number, per-prefix and per-key
// limits answer 429 rate-limited with Retry-After and a limit member
// (number, prefix, api_key). A check answers 200 verified, 422
// verification-mismatch with attempts_left (0: now locked), 423
// verification-locked on later checks (423 rather than 409: the state is
// final for this verification, and a client can tell it from a
// pool-exhausted 409 by status alone; start a new verification), 410
// verification-expired, 409 verification-failed when the flash call was
// never placed, and 404. The expected caller ID is never in a response.
//
// Devices: POST /v1/devices spends a verified verification and returns
// the device token once; it takes no Idempotency-Key, since a replay would
// need the token stored. Every refusal of a device is 403 device-rejected
// with a reason member: not_verified, not_registered, token_invalid,
// sim_changed, chip_changed, reverify_required. Problem details are fixed
// texts, and no raw device id, chip serial, ICCID, IMSI or token reaches a
// response (but the registration's own) or a log line.
//
// An API key created with RequireDevice must present, on QR scans and
// callbacks, the device token of the scanner's or caller's number in the
// Privnum-Device-Token header (callbacks then need the caller field): 403
// device-rejected with reason device_token_required (no header),
// token_invalid or reverify_required otherwise. Without Config.Devices the
// policy cannot be checked and such requests fail closed with 503.
//
// After a successful change the handlers publish binding events
// (binding.created, binding.extended, binding.released) to Config.Events;
// the CLI does not.
package api
