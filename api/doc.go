// Package api is privnum's HTTP API: JSON over HTTP, versioned under /v1,
// calling the same services as the CLI (pool, binding, order, cdr).
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
//	GET    /v1/webhooks                      webhooks  (Config.Webhooks set)
//	POST   /v1/webhooks                      webhooks                    Idempotency-Key
//	GET    /v1/webhooks/{id}                 webhooks
//	DELETE /v1/webhooks/{id}                 webhooks
//	POST   /v1/qr-codes                      qr        (Config.QR set)   Idempotency-Key
//	GET    /v1/qr-codes/{token}              qr
//	DELETE /v1/qr-codes/{token}              qr
//	POST   /v1/qr-codes/{token}/scans        qr
//	GET    /openapi.json, GET /healthz       public
//
// Every request passes the same steps: the API key (Authorization: Bearer
// or X-API-Key; 401 with WWW-Authenticate, 403 for a missing scope), the
// body (at most 64 KiB, 413; application/json, 415; one JSON object with
// known fields only, 400), the Idempotency-Key if any, then the handler,
// which checks the fields (422, naming the field) before it calls a
// service. A refused request changes nothing. Errors are RFC 9457 problem
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
// After a successful change the handlers publish binding events
// (binding.created, binding.extended, binding.released) to Config.Events;
// the CLI does not.
package api
