// Package kms is envelope's key management service: master keys that are
// created, rotated, disabled and deleted with the semantics of AWS KMS, and
// the cryptographic operations on them (GenerateDataKey, Encrypt, Decrypt,
// ReEncrypt, GetPublicKey, ...).
//
// The service runs in process over a [Store]; key material is sealed under a
// root key before it reaches the store, so it is never at rest in the clear.
//
// # Authorization
//
// The service itself trusts its caller. A caller that acts for others (the
// AWS-API server, for its principals) puts an [Authorizer] in the context
// of each operation ([WithAuthorizer]): the service asks it about every key
// the operation acts on, in the transaction that resolves and uses the key,
// so that the key authorized is the key used.
//
// # Key cache
//
// Operations read keys through a cache in front of the store: a key in use
// is served from memory, with no store transaction, for up to
// [Options.CacheTTL]. The service's own writes drop what they change at
// once; a store shared with other processes announces their changes to
// [Service.Invalidate].
package kms
