// Package testsrv starts the real servers the connector tests talk to, on
// loopback and in temporary directories, and stops them when the test
// ends: a Kafka-protocol broker (franz-go's kfake, in-process or as its own
// process) and a throwaway PostgreSQL cluster (Debian's postgresql
// package, run as an unprivileged user because PostgreSQL refuses root).
//
// Nothing here is a fake of Runnel's own code: each server is a separate
// implementation of the protocol the connector speaks.
package testsrv
