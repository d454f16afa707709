// Package interop holds the end-to-end interoperability tests between
// envelope's CLI and the official AWS Encryption SDK for JavaScript.
//
// The tests sit behind the "interop" build tag because they need Node.js 20
// and the SDK installed under interop/js:
//
//	npm ci --prefix interop/js
//	go test -tags interop -count=1 -timeout 25m ./interop/
//
// They build cmd/envelope, then send files both ways through the two CLIs:
// messages written by the SDK (through interop/js/esdk.js) are read by
// "envelope decrypt", and messages written by "envelope encrypt" are read by
// the SDK. They also decrypt every golden vector in testdata/golden (written
// by interop/js/gen-golden.js) with the envelope CLI.
//
// The JavaScript SDK has no ECDH keyrings; for those the peer is the
// official AWS Encryption SDK for Go with its Material Providers Library,
// through interop/esdkgo (a module of its own, built by the tests with the
// Go module proxy), which also wrote testdata/golden/ecdh.
//
// The package has no non-test code; this file only carries its documentation.
package interop
