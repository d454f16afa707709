#!/usr/bin/env node
// esdk.js — a small command-line peer around the official AWS Encryption SDK
// for JavaScript (@aws-crypto/client-node, pinned to 5.0.2 in package.json).
// envelope's interop tests drive it to check that envelope and the official
// SDK read each other's messages, and gen-golden.js uses it to write the
// golden vectors in testdata/golden.
//
// Usage:
//
//   node esdk.js encrypt --key SPEC [--key SPEC]... [--suite 0x0578]
//       [--frame-size N[K|M]] [--context name=value]... [--commitment-policy P]
//       [--utf8-sorting] [--kms-endpoint URL] --in FILE --out FILE
//
//   node esdk.js decrypt --key SPEC [--key SPEC]... [--commitment-policy P]
//       [--utf8-sorting] [--context name=value]... [--kms-endpoint URL]
//       --in FILE --out FILE
//
// decrypt writes the plaintext to --out and prints one JSON line to stdout:
//   {"suite":"0x0578","context":{...},"frameLength":4096}
// The context is the one stored in the message (including
// aws-crypto-public-key for signed suites). Each --context pair given to
// decrypt must be present, with the same value, in that context.
//
// Key SPEC (the same grammar as envelope's CLI):
//   aes:file=PATH,namespace=NS,name=NAME
//       PATH holds the base64 of a 16, 24 or 32-byte key (surrounding
//       whitespace allowed), or else the 16, 24 or 32 raw bytes: base64 is
//       tried first, as envelope's CLI does.
//   rsa:file=PATH,namespace=NS,name=NAME[,padding=pkcs1|oaep-sha1|oaep-sha256|oaep-sha384|oaep-sha512]
//       PATH holds a PEM key: public (SPKI or PKCS#1) to encrypt, private
//       (PKCS#8 or PKCS#1) to decrypt; a private key also serves to encrypt.
//       The padding defaults to oaep-sha256, as in envelope's CLI.
//   kms:arn:aws:kms:REGION:ACCOUNT:key/ID
//       a KMS key reached at --kms-endpoint URL (an envelope server) through
//       KmsKeyringNode and @aws-sdk/client-kms; credentials are taken from
//       AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY only.
// Several --key flags make a multi-keyring whose first key is the generator.
//
// Suites are ESDK hex ids (0x0014 ... 0x0578). The commitment policy is one of
// require-encrypt-require-decrypt (default), require-encrypt-allow-decrypt,
// forbid-encrypt-allow-decrypt. --utf8-sorting makes the raw AES keyring sort
// the encryption context by UTF-8 bytes when it builds its wrapping AAD (the
// SDK's default is a locale comparison, which other implementations do not
// reproduce for mixed-case, '_' or non-ASCII keys).
//
// Both commands stream: memory use does not grow with the file size. On any
// failure they print the error to stderr, exit non-zero and leave no --out
// file behind (the output is written to a temporary name and renamed).
//
// RSA PKCS#1 v1.5: Node 20 refuses PKCS#1 v1.5 private-key decryption (a
// mitigation of CVE-2023-46809, the Marvin attack) unless node runs with
//
//   node --security-revert=CVE-2023-46809 esdk.js decrypt ...
//
// Callers should pass that flag when they decrypt with a pkcs1 key. If they do
// not, esdk.js re-runs itself once under that flag, so that `decrypt` works
// either way. Encrypting (wrapping) with pkcs1 needs no flag. Under that flag
// node itself prints "SECURITY WARNING: Reverting CVE-2023-46809 ..." to
// STDOUT before the script runs, so callers must take the JSON summary from
// the last line of stdout, not the whole of it.
'use strict'

const fs = require('fs')
const path = require('path')
const crypto = require('crypto')
const { pipeline } = require('stream/promises')
const { spawnSync } = require('child_process')
const {
  buildClient,
  CommitmentPolicy,
  AlgorithmSuiteIdentifier,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
  RawRsaKeyringNode,
  MultiKeyringNode,
  KmsKeyringNode,
} = require('@aws-crypto/client-node')
const { KMS } = require('@aws-sdk/client-kms')

const SECURITY_REVERT = '--security-revert=CVE-2023-46809'

/** The suites the SDK supports, by ESDK hex id. */
const SUITES = {
  '0x0014': AlgorithmSuiteIdentifier.ALG_AES128_GCM_IV12_TAG16,
  '0x0046': AlgorithmSuiteIdentifier.ALG_AES192_GCM_IV12_TAG16,
  '0x0078': AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16,
  '0x0114': AlgorithmSuiteIdentifier.ALG_AES128_GCM_IV12_TAG16_HKDF_SHA256,
  '0x0146': AlgorithmSuiteIdentifier.ALG_AES192_GCM_IV12_TAG16_HKDF_SHA256,
  '0x0178': AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA256,
  '0x0214':
    AlgorithmSuiteIdentifier.ALG_AES128_GCM_IV12_TAG16_HKDF_SHA256_ECDSA_P256,
  '0x0346':
    AlgorithmSuiteIdentifier.ALG_AES192_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384,
  '0x0378':
    AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA384_ECDSA_P384,
  '0x0478': AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY,
  '0x0578':
    AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
}

/** Command-line names of the commitment policies. */
const POLICIES = {
  'require-encrypt-require-decrypt': CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
  'require-encrypt-allow-decrypt': CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT,
  'forbid-encrypt-allow-decrypt': CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT,
}

/** RSA paddings: node padding constant and OAEP hash. */
const PADDINGS = {
  pkcs1: { padding: crypto.constants.RSA_PKCS1_PADDING, oaepHash: undefined },
  'oaep-sha1': { padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
  'oaep-sha256': { padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
  'oaep-sha384': { padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha384' },
  'oaep-sha512': { padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha512' },
}

/** Raw AES wrapping suites by key length in bytes. */
const AES_WRAPPING = {
  16: RawAesWrappingSuiteIdentifier.AES128_GCM_IV12_TAG16_NO_PADDING,
  24: RawAesWrappingSuiteIdentifier.AES192_GCM_IV12_TAG16_NO_PADDING,
  32: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
}

const USAGE = `usage:
  node esdk.js encrypt --key SPEC [--key SPEC]... [--suite 0x0578] [--frame-size N[K|M]]
      [--context name=value]... [--commitment-policy P] [--utf8-sorting] --in FILE --out FILE
  node esdk.js decrypt --key SPEC [--key SPEC]... [--commitment-policy P] [--utf8-sorting]
      [--context name=value]... --in FILE --out FILE
SPEC: aes:file=PATH,namespace=NS,name=NAME
      rsa:file=PATH,namespace=NS,name=NAME[,padding=pkcs1|oaep-sha1|oaep-sha256|oaep-sha384|oaep-sha512]
P:    ${Object.keys(POLICIES).join(' | ')}
suites: ${Object.keys(SUITES).join(' ')}`

/** An error in the caller's input: reported together with the usage text. */
class UsageError extends Error {}

/**
 * Parses the command line (without node and the script path).
 * @param {string[]} argv
 */
function parseArgs(argv) {
  const [command, ...rest] = argv
  if (command !== 'encrypt' && command !== 'decrypt') {
    throw new UsageError(`unknown command ${JSON.stringify(command || '')}`)
  }
  const opts = {
    command,
    keys: [],
    suite: undefined,
    frameSize: undefined,
    context: {},
    policy: 'require-encrypt-require-decrypt',
    utf8Sorting: false,
    kmsEndpoint: undefined,
    in: undefined,
    out: undefined,
  }
  for (let i = 0; i < rest.length; i++) {
    let flag = rest[i]
    let value
    const eq = flag.indexOf('=')
    if (flag.startsWith('--') && eq > 0) {
      value = flag.slice(eq + 1)
      flag = flag.slice(0, eq)
    }
    const next = () => {
      if (value !== undefined) return value
      if (i + 1 >= rest.length) throw new UsageError(`${flag} needs a value`)
      return rest[++i]
    }
    switch (flag) {
      case '--key':
      case '-k':
        opts.keys.push(parseKeySpec(next()))
        break
      case '--suite':
        if (command !== 'encrypt') throw new UsageError('--suite is for encrypt only')
        opts.suite = parseSuite(next())
        break
      case '--frame-size': {
        if (command !== 'encrypt') throw new UsageError('--frame-size is for encrypt only')
        const s = next()
        const m = /^([0-9]+)([KM]?)$/.exec(s)
        const n = m ? Number(m[1]) * { '': 1, K: 1024, M: 1 << 20 }[m[2]] : NaN
        if (!Number.isSafeInteger(n) || n < 1 || n > 0xffffffff) {
          throw new UsageError(`invalid frame size ${JSON.stringify(s)}: want 1..4294967295 (suffixes K and M for KiB and MiB)`)
        }
        opts.frameSize = n
        break
      }
      case '--context':
      case '-c': {
        const s = next()
        const at = s.indexOf('=')
        if (at <= 0) throw new UsageError(`invalid context pair ${JSON.stringify(s)}: want name=value`)
        const name = s.slice(0, at)
        if (Object.prototype.hasOwnProperty.call(opts.context, name)) {
          throw new UsageError(`context name ${JSON.stringify(name)} given twice`)
        }
        opts.context[name] = s.slice(at + 1)
        break
      }
      case '--commitment-policy': {
        const s = next()
        if (!POLICIES[s]) throw new UsageError(`unknown commitment policy ${JSON.stringify(s)}`)
        opts.policy = s
        break
      }
      case '--utf8-sorting':
        if (value !== undefined) throw new UsageError('--utf8-sorting takes no value')
        opts.utf8Sorting = true
        break
      case '--kms-endpoint':
        opts.kmsEndpoint = next()
        break
      case '--in':
        opts.in = next()
        break
      case '--out':
        opts.out = next()
        break
      default:
        throw new UsageError(`unknown argument ${JSON.stringify(rest[i])}`)
    }
  }
  if (opts.keys.length === 0) throw new UsageError('at least one --key is required')
  if (!opts.in) throw new UsageError('--in is required')
  if (!opts.out) throw new UsageError('--out is required')
  return opts
}

/**
 * Parses a suite id such as "0x0578" (or the SDK's enum name).
 * @param {string} s
 * @returns {number}
 */
function parseSuite(s) {
  const m = /^0x([0-9a-f]{1,4})$/i.exec(s)
  if (m) {
    const id = '0x' + m[1].toLowerCase().padStart(4, '0')
    if (SUITES[id] !== undefined) return SUITES[id]
  } else if (typeof AlgorithmSuiteIdentifier[s] === 'number') {
    return AlgorithmSuiteIdentifier[s]
  }
  throw new UsageError(`unknown suite ${JSON.stringify(s)}: want one of ${Object.keys(SUITES).join(' ')}`)
}

/**
 * Formats a numeric suite id as "0x0578".
 * @param {number} id
 */
function suiteHex(id) {
  return '0x' + id.toString(16).padStart(4, '0')
}

/**
 * Parses a key SPEC into {type, file, namespace, name, padding?}.
 * @param {string} spec
 */
function parseKeySpec(spec) {
  const colon = spec.indexOf(':')
  const type = colon < 0 ? '' : spec.slice(0, colon)
  if (type === 'kms') {
    // kms:ARN — a KMS key reached through --kms-endpoint.
    const arn = spec.slice(colon + 1)
    if (!/^arn:[^:]+:kms:[^:]+:[^:]+:key\/.+$/.test(arn)) {
      throw new UsageError(`invalid key ${JSON.stringify(spec)}: want kms:arn:aws:kms:REGION:ACCOUNT:key/ID`)
    }
    return { type, arn }
  }
  if (type !== 'aes' && type !== 'rsa') {
    throw new UsageError(`invalid key ${JSON.stringify(spec)}: want aes:..., rsa:... or kms:ARN`)
  }
  const fields = {}
  for (const part of spec.slice(colon + 1).split(',')) {
    const eq = part.indexOf('=')
    if (eq <= 0) throw new UsageError(`invalid key ${JSON.stringify(spec)}: ${JSON.stringify(part)} is not name=value`)
    const k = part.slice(0, eq)
    if (Object.prototype.hasOwnProperty.call(fields, k)) {
      throw new UsageError(`invalid key ${JSON.stringify(spec)}: ${k} given twice`)
    }
    fields[k] = part.slice(eq + 1)
  }
  const allowed = type === 'aes' ? ['file', 'namespace', 'name'] : ['file', 'namespace', 'name', 'padding']
  for (const k of Object.keys(fields)) {
    if (!allowed.includes(k)) throw new UsageError(`invalid key ${JSON.stringify(spec)}: unknown field ${k}`)
  }
  if (type === 'rsa' && fields.padding === undefined) fields.padding = 'oaep-sha256' // envelope's default
  for (const k of allowed) {
    if (!fields[k]) throw new UsageError(`invalid key ${JSON.stringify(spec)}: ${k}= is required`)
  }
  if (type === 'rsa' && !PADDINGS[fields.padding]) {
    throw new UsageError(`invalid key ${JSON.stringify(spec)}: unknown padding ${JSON.stringify(fields.padding)}`)
  }
  return { type, ...fields }
}

/**
 * Reads a raw AES key file, with the same rule as envelope's CLI: first the
 * base64 (standard alphabet, padded; surrounding whitespace and line breaks
 * ignored) of a 16, 24 or 32-byte key, else 16, 24 or 32 raw bytes. Returns a
 * fresh Buffer.
 * @param {string} file
 */
function readAesKey(file) {
  const data = fs.readFileSync(file)
  const text = data.toString('latin1').trim().replace(/[\r\n]/g, '')
  if (text.length > 0 && text.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
    const key = Buffer.from(text, 'base64')
    if (AES_WRAPPING[key.length] !== undefined) return key
  }
  if (AES_WRAPPING[data.length] !== undefined) return Buffer.from(data)
  throw new Error(`${file}: holds ${data.length} bytes; want a 16, 24 or 32-byte AES key, raw or base64`)
}

/**
 * Reads a PEM RSA key and returns {publicKey, privateKey} as PEM strings;
 * privateKey is undefined when the file holds a public key only.
 * @param {string} file
 */
function readRsaKey(file) {
  const pem = fs.readFileSync(file)
  let priv
  try {
    priv = crypto.createPrivateKey(pem)
  } catch (_) {
    priv = undefined
  }
  const pub = priv ? crypto.createPublicKey(priv) : crypto.createPublicKey(pem)
  if (pub.asymmetricKeyType !== 'rsa') throw new Error(`${file}: not an RSA key`)
  return {
    publicKey: pub.export({ type: 'spki', format: 'pem' }),
    privateKey: priv && priv.export({ type: 'pkcs8', format: 'pem' }),
  }
}

/**
 * Builds the keyring for a list of parsed key specs: one keyring, or a
 * multi-keyring whose generator is the first.
 * @param {object[]} keys parsed key specs
 * @param {{utf8Sorting?: boolean, decrypt?: boolean}} options
 */
function buildKeyring(keys, { utf8Sorting = false, decrypt = false, kmsEndpoint } = {}) {
  const rings = keys.map((k, i) => {
    if (k.type === 'kms') {
      if (!kmsEndpoint) throw new UsageError('a kms: key needs --kms-endpoint URL')
      // Credentials from the environment only: no other provider (and so
      // no instance-metadata lookup) is ever tried.
      const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = process.env
      if (!accessKeyId || !secretAccessKey) throw new Error('a kms: key needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY')
      const region = k.arn.split(':')[3]
      const client = new KMS({ endpoint: kmsEndpoint, region, credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 })
      const clientProvider = () => client
      return !decrypt && i === 0
        ? new KmsKeyringNode({ generatorKeyId: k.arn, clientProvider })
        : new KmsKeyringNode({ keyIds: [k.arn], clientProvider })
    }
    if (k.type === 'aes') {
      const key = readAesKey(k.file)
      return new RawAesKeyringNode({
        keyNamespace: k.namespace,
        keyName: k.name,
        // The SDK zeroes the buffer it is given: hand it a copy.
        unencryptedMasterKey: Uint8Array.from(key),
        wrappingSuite: AES_WRAPPING[key.length],
        utf8Sorting,
      })
    }
    const { publicKey, privateKey } = readRsaKey(k.file)
    if (decrypt && !privateKey) throw new Error(`${k.file}: decrypt needs an RSA private key`)
    const { padding, oaepHash } = PADDINGS[k.padding]
    return new RawRsaKeyringNode({
      keyNamespace: k.namespace,
      keyName: k.name,
      rsaKey: { publicKey, privateKey },
      padding,
      oaepHash,
    })
  })
  if (rings.length === 1) return rings[0]
  const [generator, ...children] = rings
  return new MultiKeyringNode({ generator, children })
}

/**
 * Returns a temporary path beside out, in the same directory so that the
 * final rename is atomic.
 * @param {string} out
 */
function tempPath(out) {
  const dir = path.dirname(out)
  return path.join(dir, `.${path.basename(out)}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`)
}

/**
 * Streams src through transform into out, via a temporary file that is
 * renamed to out on success and removed on failure.
 */
async function streamToFile(inFile, transform, out) {
  const tmp = tempPath(out)
  try {
    await pipeline(fs.createReadStream(inFile), transform, fs.createWriteStream(tmp, { flags: 'wx' }))
    fs.renameSync(tmp, out)
  } catch (err) {
    fs.rmSync(tmp, { force: true })
    throw err
  }
}

/**
 * Encrypts the file opts.in into opts.out. Returns the message header the
 * SDK wrote.
 * @param {object} opts as returned by parseArgs
 */
async function encryptFile(opts) {
  const client = buildClient(POLICIES[opts.policy])
  const keyring = buildKeyring(opts.keys, { utf8Sorting: opts.utf8Sorting, kmsEndpoint: opts.kmsEndpoint })
  const params = { encryptionContext: opts.context }
  if (opts.suite !== undefined) params.suiteId = opts.suite
  if (opts.frameSize !== undefined) params.frameLength = opts.frameSize
  const stream = client.encryptStream(keyring, params)
  let header
  stream.once('MessageHeader', (h) => {
    header = h
  })
  await streamToFile(opts.in, stream, opts.out)
  return summary(header)
}

/**
 * Decrypts the file opts.in into opts.out and checks that every pair of
 * opts.context is in the message's context. Returns the header summary.
 * @param {object} opts as returned by parseArgs
 */
async function decryptFile(opts) {
  const client = buildClient(POLICIES[opts.policy])
  const keyring = buildKeyring(opts.keys, { utf8Sorting: opts.utf8Sorting, decrypt: true, kmsEndpoint: opts.kmsEndpoint })
  const stream = client.decryptStream(keyring)
  let header
  let contextError
  stream.once('MessageHeader', (h) => {
    header = h
    contextError = checkContext(h.encryptionContext, opts.context)
    if (contextError) stream.destroy(contextError)
  })
  try {
    await streamToFile(opts.in, stream, opts.out)
  } catch (err) {
    if (err && err.message === 'unencryptedDataKey has not been set') {
      // The SDK's words when no keyring could unwrap a data key.
      err.message =
        'no key could unwrap the data key (wrong key, namespace or name; or, for raw AES ' +
        'with a mixed-case or non-ASCII context, try --utf8-sorting) [SDK: unencryptedDataKey has not been set]'
    }
    throw err
  }
  if (!header) throw new Error('decrypt finished without a message header')
  if (contextError) throw contextError // unreachable: the stream failed already
  return summary(header)
}

/**
 * Returns an Error when a pair of want is missing from got or differs, else
 * undefined.
 */
function checkContext(got, want) {
  for (const [k, v] of Object.entries(want)) {
    if (!Object.prototype.hasOwnProperty.call(got, k)) {
      return new Error(`encryption context lacks required key ${JSON.stringify(k)}`)
    }
    if (got[k] !== v) {
      return new Error(`encryption context ${JSON.stringify(k)} is ${JSON.stringify(got[k])}, want ${JSON.stringify(v)}`)
    }
  }
  return undefined
}

/** The JSON summary printed by decrypt. */
function summary(header) {
  if (!header) return undefined
  return {
    suite: suiteHex(header.suiteId),
    context: { ...header.encryptionContext },
    frameLength: header.frameLength,
  }
}

/** Reports whether this process may decrypt RSA PKCS#1 v1.5. */
function pkcs1DecryptAllowed() {
  return process.execArgv.includes(SECURITY_REVERT)
}

async function main(argv) {
  let opts
  try {
    opts = parseArgs(argv)
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`esdk.js: ${err.message}\n${USAGE}\n`)
      return 2
    }
    throw err
  }
  if (opts.command === 'decrypt' && opts.keys.some((k) => k.padding === 'pkcs1') && !pkcs1DecryptAllowed()) {
    // See the comment at the top: run again with the flag node needs.
    const r = spawnSync(process.execPath, [SECURITY_REVERT, ...process.execArgv, __filename, ...argv], {
      stdio: 'inherit',
    })
    if (r.error) throw r.error
    return r.status === null ? 1 : r.status
  }
  if (opts.command === 'encrypt') {
    await encryptFile(opts)
  } else {
    const info = await decryptFile(opts)
    process.stdout.write(JSON.stringify(info) + '\n')
  }
  return 0
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
    },
    (err) => {
      process.stderr.write(`esdk.js: ${err && err.message ? err.message : err}\n`)
      process.exitCode = 1
    }
  )
}

module.exports = {
  SUITES,
  POLICIES,
  PADDINGS,
  parseArgs,
  parseKeySpec,
  parseSuite,
  suiteHex,
  buildKeyring,
  encryptFile,
  decryptFile,
}
