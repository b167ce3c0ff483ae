// Package web is Runnel's one HTTP port: the REST API under /api/v1, the
// Kinesis Data Streams wire API on POST / (package web/kinesis), the web UI,
// /metrics and /healthz. Handlers validate every input and answer errors as
// JSON {"error": {"code", "message", "field"}} with a 4xx status.
package web
