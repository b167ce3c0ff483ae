// Package client holds Runnel's client side: the producer library
// (client/producer) and the log-file agent (client/agent). They speak the
// Kinesis Data Streams API, so they work against a Runnel server (which
// serves that API on POST /) and against AWS Kinesis alike, and import
// nothing of the server.
package client
