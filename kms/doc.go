// Package kms is envelope's key management service: master keys that are
// created, rotated, disabled and deleted with the semantics of AWS KMS, and
// the cryptographic operations on them (GenerateDataKey, Encrypt, Decrypt,
// ReEncrypt, GetPublicKey, ...).
//
// The service runs in process over a [Store]; key material is sealed under a
// root key before it reaches the store, so it is never at rest in the clear.
package kms
