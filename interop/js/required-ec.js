#!/usr/bin/env node
// required-ec.js — messages with a required encryption context, written and
// read straight from the AWS Encryption SDK specification with node's
// crypto module alone (no ESDK code, no envelope code).
//
// The JavaScript ESDK (@aws-crypto/client-node 5.0.2, the newest release)
// has no required encryption context materials manager and cannot supply a
// reproduced encryption context on decrypt, so it can neither write nor
// read such messages. The other ESDKs (Java, Python, .NET, Rust, Go) can,
// but are not installable here. This file is the independent peer instead:
// it follows client-apis/encrypt.md and decrypt.md ("encryption context to
// only authenticate", "reproduced encryption context"),
// framework/required-encryption-context-cmm.md, data-format/*.md and the
// raw AES and RSA keyrings (framework/raw-*-keyring.md).
//
// Usage:
//
//   node required-ec.js seal --key SPEC --suite 0x0478|0x0578|0x0178
//       [--frame-size N] [--context name=value]... [--required NAME]...
//       --in FILE --out FILE
//   node required-ec.js open --key SPEC [--context name=value]... --in FILE --out FILE
//   node required-ec.js golden
//
// seal writes a framed message whose header stores the context pairs not
// named by --required, and whose header tag authenticates the required
// pairs after the header body; the data key is wrapped with the whole
// context, as a keyring sees it. open decrypts with the caller's context as
// the reproduced context (pairs the header stores must match; the others
// are authenticated only) and prints one JSON line:
//   {"suite":"0x0478","storedContext":{...},"requiredKeys":[...]}
// golden writes testdata/golden/required-ec-*.esdk and
// manifest-required-ec.json with the golden keys (testdata/golden/keys).
//
// Key SPEC: aes:file=PATH,namespace=NS,name=NAME (raw key bytes) or
// rsa:file=PATH,namespace=NS,name=NAME (PEM; OAEP-SHA256 only).
'use strict'

const fs = require('fs')
const path = require('path')
const crypto = require('crypto')

const SUITES = {
  '0x0178': { id: 0x0178, version: 1, kdf: 'sha256', signed: false, committing: false },
  '0x0478': { id: 0x0478, version: 2, kdf: 'sha512', signed: false, committing: true },
  '0x0578': { id: 0x0578, version: 2, kdf: 'sha512', signed: true, committing: true },
}
const PUBLIC_KEY = 'aws-crypto-public-key'
const FINAL = 0xffffffff

/** u16 / u32 / u64 big-endian. */
const u16 = (n) => { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b }
const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b }
const u64 = (n) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b }
const field16 = (b) => Buffer.concat([u16(b.length), b])

/**
 * structures.md, Serialization: pair count, then key and value with 2-byte
 * lengths, sorted by the keys' UTF-8 bytes; an empty context is no bytes.
 */
function serializeContext(ec) {
  const keys = Object.keys(ec)
  if (keys.length === 0) return Buffer.alloc(0)
  const entries = keys.map((k) => [Buffer.from(k, 'utf8'), Buffer.from(ec[k], 'utf8')])
  entries.sort((a, b) => Buffer.compare(a[0], b[0]))
  return Buffer.concat([u16(entries.length), ...entries.flatMap(([k, v]) => [field16(k), field16(v)])])
}

/** Parses a key spec: aes:... or rsa:... with file, namespace, name. */
function parseKey(spec) {
  const [kind, rest] = [spec.slice(0, spec.indexOf(':')), spec.slice(spec.indexOf(':') + 1)]
  const f = Object.fromEntries(rest.split(',').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]))
  if (!['aes', 'rsa'].includes(kind) || !f.file || !f.namespace || !f.name) throw new Error(`bad key spec ${spec}`)
  const data = fs.readFileSync(f.file)
  return { kind, namespace: f.namespace, name: f.name, data }
}

/** raw-aes-keyring.md: wrap with AES-GCM, AAD = the serialized context. */
function wrap(key, dataKey, ec) {
  if (key.kind === 'aes') {
    const iv = crypto.randomBytes(12)
    const c = crypto.createCipheriv(`aes-${key.data.length * 8}-gcm`, key.data, iv)
    c.setAAD(serializeContext(ec))
    const ct = Buffer.concat([c.update(dataKey), c.final(), c.getAuthTag()])
    const info = Buffer.concat([Buffer.from(key.name, 'utf8'), u32(128), u32(12), iv])
    return { providerId: Buffer.from(key.namespace), providerInfo: info, ciphertext: ct }
  }
  const ct = crypto.publicEncrypt({ key: key.data, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, dataKey)
  return { providerId: Buffer.from(key.namespace), providerInfo: Buffer.from(key.name), ciphertext: ct }
}

/** The inverse of wrap, for the EDKs that name key; null if none opens. */
function unwrap(key, edks, ec, keyLength) {
  for (const e of edks) {
    if (e.providerId.toString() !== key.namespace) continue
    try {
      if (key.kind === 'aes') {
        const info = e.providerInfo
        if (info.length !== key.name.length + 20 || info.subarray(0, info.length - 20).toString() !== key.name) continue
        const iv = info.subarray(info.length - 12)
        const d = crypto.createDecipheriv(`aes-${key.data.length * 8}-gcm`, key.data, iv)
        d.setAAD(serializeContext(ec))
        d.setAuthTag(e.ciphertext.subarray(e.ciphertext.length - 16))
        const dk = Buffer.concat([d.update(e.ciphertext.subarray(0, e.ciphertext.length - 16)), d.final()])
        if (dk.length === keyLength) return dk
      } else {
        if (e.providerInfo.toString() !== key.name) continue
        const dk = crypto.privateDecrypt({ key: key.data, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, e.ciphertext)
        if (dk.length === keyLength) return dk
      }
    } catch (err) {
      // a wrong key or context: try the next
    }
  }
  return null
}

/** algorithm-suites.md: the derived data key and the commit key. */
function deriveKeys(suite, dataKey, messageId) {
  const id = u16(suite.id)
  if (suite.committing) {
    const key = Buffer.from(crypto.hkdfSync('sha512', dataKey, messageId, Buffer.concat([id, Buffer.from('DERIVEKEY')]), 32))
    const commit = Buffer.from(crypto.hkdfSync('sha512', dataKey, messageId, Buffer.from('COMMITKEY'), 32))
    return { key, commit }
  }
  return { key: Buffer.from(crypto.hkdfSync(suite.kdf, dataKey, Buffer.alloc(0), Buffer.concat([id, messageId]), 32)) }
}

function gcm(key, iv, aad, pt) {
  const c = crypto.createCipheriv('aes-256-gcm', key, iv)
  c.setAAD(aad)
  const ct = Buffer.concat([c.update(pt), c.final()])
  return { ct, tag: c.getAuthTag() }
}

function gcmOpen(key, iv, aad, ct, tag) {
  const d = crypto.createDecipheriv('aes-256-gcm', key, iv)
  d.setAAD(aad)
  d.setAuthTag(tag)
  return Buffer.concat([d.update(ct), d.final()])
}

const frameIV = (seq) => Buffer.concat([Buffer.alloc(8), u32(seq)])
const bodyAAD = (messageId, label, seq, len) =>
  Buffer.concat([messageId, Buffer.from(`AWSKMSEncryptionClient ${label}`), u32(seq), u64(len)])

/** Compressed SEC 1 point of an EC public key, from its uncompressed form. */
function compressedPoint(publicKey) {
  const jwk = publicKey.export({ format: 'jwk' })
  const x = Buffer.from(jwk.x, 'base64url')
  const y = Buffer.from(jwk.y, 'base64url')
  return Buffer.concat([Buffer.from([0x02 | (y[y.length - 1] & 1)]), x])
}

/** encrypt.md: a framed message with the required pairs only authenticated. */
function seal({ key, suite, frameSize, context, required, plaintext }) {
  const full = { ...context }
  let signer
  if (suite.signed) {
    const pair = crypto.generateKeyPairSync('ec', { namedCurve: 'secp384r1' })
    signer = pair.privateKey
    full[PUBLIC_KEY] = compressedPoint(pair.publicKey).toString('base64')
  }
  const stored = Object.fromEntries(Object.entries(full).filter(([k]) => !required.includes(k)))
  const authOnly = serializeContext(Object.fromEntries(required.map((k) => [k, full[k]])))
  const dataKey = crypto.randomBytes(32)
  const edk = wrap(key, dataKey, full) // keyrings see the whole context
  const messageId = crypto.randomBytes(suite.version === 2 ? 32 : 16)
  const { key: dk, commit } = deriveKeys(suite, dataKey, messageId)
  const aad = serializeContext(stored)
  const parts = suite.version === 2 ? [Buffer.from([2])] : [Buffer.from([1, 0x80])]
  parts.push(u16(suite.id), messageId, field16(aad), u16(1),
    field16(edk.providerId), field16(edk.providerInfo), field16(edk.ciphertext), Buffer.from([2]))
  if (suite.version === 1) parts.push(u32(0), Buffer.from([12]))
  parts.push(u32(frameSize))
  if (suite.version === 2) parts.push(commit)
  const body = Buffer.concat(parts)
  const headerIV = Buffer.alloc(12)
  const { tag } = gcm(dk, headerIV, Buffer.concat([body, authOnly]), Buffer.alloc(0))
  const header = Buffer.concat(suite.version === 1 ? [body, headerIV, tag] : [body, tag])
  const frames = []
  let seq = 1
  let off = 0
  for (; plaintext.length - off >= frameSize; off += frameSize, seq++) {
    const pt = plaintext.subarray(off, off + frameSize)
    const f = gcm(dk, frameIV(seq), bodyAAD(messageId, 'Frame', seq, pt.length), pt)
    frames.push(u32(seq), frameIV(seq), f.ct, f.tag)
  }
  const last = plaintext.subarray(off)
  const f = gcm(dk, frameIV(seq), bodyAAD(messageId, 'Final Frame', seq, last.length), last)
  frames.push(u32(FINAL), u32(seq), frameIV(seq), u32(last.length), f.ct, f.tag)
  const msg = Buffer.concat([header, ...frames])
  if (!signer) return msg
  const sig = crypto.sign('sha384', msg, { key: signer, dsaEncoding: 'der' })
  return Buffer.concat([msg, u16(sig.length), sig])
}

/** A cursor over a message, failing on a short read. */
class Cursor {
  constructor(buf) { this.buf = buf; this.off = 0 }
  take(n) {
    if (this.off + n > this.buf.length) throw new Error('message is truncated')
    const b = this.buf.subarray(this.off, this.off + n)
    this.off += n
    return b
  }
  u8() { return this.take(1)[0] }
  u16() { return this.take(2).readUInt16BE() }
  u32() { return this.take(4).readUInt32BE() }
  field16() { return this.take(this.u16()) }
}

function parseContext(b) {
  const ec = {}
  if (b.length === 0) return ec
  const c = new Cursor(b)
  for (let n = c.u16(); n > 0; n--) {
    const k = c.field16().toString('utf8')
    ec[k] = c.field16().toString('utf8')
  }
  if (c.off !== b.length) throw new Error('bad encryption context')
  return ec
}

/** decrypt.md with a reproduced encryption context. */
function open({ key, context, message }) {
  const c = new Cursor(message)
  const version = c.u8()
  if (version === 1 && c.u8() !== 0x80) throw new Error('bad header type')
  const suiteId = c.u16()
  const suite = Object.values(SUITES).find((s) => s.id === suiteId && s.version === version)
  if (!suite) throw new Error('unsupported suite')
  const messageId = c.take(version === 2 ? 32 : 16)
  const stored = parseContext(c.field16())
  const edks = []
  for (let n = c.u16(); n > 0; n--) edks.push({ providerId: c.field16(), providerInfo: c.field16(), ciphertext: c.field16() })
  if (c.u8() !== 2) throw new Error('only framed messages')
  if (version === 1) { c.u32(); c.u8() }
  const frameSize = c.u32()
  const commit = version === 2 ? c.take(32) : null
  const headerBody = message.subarray(0, c.off)
  const headerIV = version === 1 ? c.take(12) : Buffer.alloc(12)
  const headerTag = c.take(16)
  // Reproduced context: stored pairs must match, the others are required.
  const requiredKeys = []
  for (const [k, v] of Object.entries(context)) {
    if (k in stored) {
      if (stored[k] !== v) throw new Error(`encryption context mismatch on ${k}`)
    } else {
      requiredKeys.push(k)
    }
  }
  const full = { ...stored, ...Object.fromEntries(requiredKeys.map((k) => [k, context[k]])) }
  const dataKey = unwrap(key, edks, full, 32)
  if (!dataKey) throw new Error('no key could unwrap the data key')
  const { key: dk, commit: wantCommit } = deriveKeys(suite, dataKey, messageId)
  if (suite.committing && !crypto.timingSafeEqual(commit, wantCommit)) throw new Error('key commitment mismatch')
  const authOnly = serializeContext(Object.fromEntries(requiredKeys.map((k) => [k, context[k]])))
  gcmOpen(dk, headerIV, Buffer.concat([headerBody, authOnly]), Buffer.alloc(0), headerTag)
  const out = []
  for (let seq = 1; ; seq++) {
    let n = c.u32()
    const final = n === FINAL
    if (final) n = c.u32()
    if (n !== seq) throw new Error(`frame ${seq} out of order`)
    if (!c.take(12).equals(frameIV(seq))) throw new Error('bad frame IV')
    const len = final ? c.u32() : frameSize
    if (len > frameSize) throw new Error('final frame too long')
    const ct = c.take(len)
    const tag = c.take(16)
    out.push(gcmOpen(dk, frameIV(seq), bodyAAD(messageId, final ? 'Final Frame' : 'Frame', seq, len), ct, tag))
    if (final) break
  }
  if (suite.signed) {
    const signed = message.subarray(0, c.off)
    const sig = c.field16()
    const point = Buffer.from(stored[PUBLIC_KEY], 'base64')
    const spkiPrefix = Buffer.from('3046301006072a8648ce3d020106052b81040022033200', 'hex')
    const pub = crypto.createPublicKey({ key: Buffer.concat([spkiPrefix, point]), format: 'der', type: 'spki' })
    if (!crypto.verify('sha384', signed, { key: pub, dsaEncoding: 'der' }, sig)) throw new Error('signature does not verify')
  }
  if (c.off !== message.length) throw new Error('data after the message')
  return { plaintext: Buffer.concat(out), summary: { suite: `0x${suite.id.toString(16).padStart(4, '0')}`, storedContext: stored, requiredKeys: requiredKeys.sort() } }
}

function parseArgs(argv) {
  const o = { context: {}, required: [], frameSize: 4096 }
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, v] = [argv[i], argv[i + 1]]
    if (v === undefined) throw new Error(`${flag} needs a value`)
    switch (flag) {
      case '--key': o.key = parseKey(v); break
      case '--suite': o.suite = SUITES[v]; if (!o.suite) throw new Error(`unknown suite ${v}`); break
      case '--frame-size': o.frameSize = Number(v); break
      case '--context': { const i = v.indexOf('='); o.context[v.slice(0, i)] = v.slice(i + 1); break }
      case '--required': o.required.push(v); break
      case '--in': o.in = v; break
      case '--out': o.out = v; break
      default: throw new Error(`unknown flag ${flag}`)
    }
  }
  return o
}

/** The golden vectors: suites × keys × which pairs are required. */
function golden() {
  const dir = path.resolve(__dirname, '..', '..', 'testdata', 'golden')
  const NS = 'golden'
  const keys = {
    aes256: `aes:file=keys/aes256.key,namespace=${NS},name=aes256`,
    'rsa2048-oaep-sha256': `rsa:file=keys/rsa2048.pem,namespace=${NS},name=rsa2048-oaep-sha256,padding=oaep-sha256`,
  }
  const encKeys = { ...keys, 'rsa2048-oaep-sha256': `rsa:file=keys/rsa2048.pub.pem,namespace=${NS},name=rsa2048-oaep-sha256` }
  const context = { purpose: 'golden', tenant: 'acme', 'key.with.dots': 'value with spaces' }
  const plaintext = fs.readFileSync(path.join(dir, 'frames-3000.bin'))
  const cases = [
    ['0x0478', 'aes256', ['tenant']],
    ['0x0578', 'aes256', ['tenant']],
    ['0x0478', 'aes256', ['key.with.dots', 'purpose', 'tenant']],
    ['0x0578', 'aes256', ['key.with.dots', 'purpose', 'tenant']],
    ['0x0178', 'aes256', ['purpose']],
    ['0x0478', 'rsa2048-oaep-sha256', ['tenant']],
    ['0x0578', 'rsa2048-oaep-sha256', ['purpose', 'tenant']],
  ]
  const manifest = []
  for (const [suiteName, keyName, required] of cases) {
    const name = `required-ec-${suiteName}-${keyName}-${required.length === 3 ? 'all' : required.join('+')}`
    const cwd = process.cwd()
    process.chdir(dir)
    try {
      const msg = seal({ key: parseKey(encKeys[keyName]), suite: SUITES[suiteName], frameSize: 512, context, required, plaintext })
      const check = open({ key: parseKey(keys[keyName]), context, message: msg })
      if (!check.plaintext.equals(plaintext)) throw new Error(`${name} does not round-trip`)
      fs.writeFileSync(`${name}.esdk`, msg)
    } finally {
      process.chdir(cwd)
    }
    manifest.push({
      name, message: `${name}.esdk`, plaintext: 'frames-3000.bin', suite: suiteName, keys: [keys[keyName]],
      context, requiredKeys: required, frameLength: 512,
      commitmentPolicy: SUITES[suiteName].committing ? 'require-encrypt-require-decrypt' : 'forbid-encrypt-allow-decrypt',
    })
  }
  fs.writeFileSync(path.join(dir, 'manifest-required-ec.json'), JSON.stringify(manifest, null, 2) + '\n')
}

function main(argv) {
  const [cmd, ...rest] = argv
  if (cmd === 'golden') return golden()
  const o = parseArgs(rest)
  if (!o.key || !o.in || !o.out) throw new Error('--key, --in and --out are required')
  const input = fs.readFileSync(o.in)
  if (cmd === 'seal') {
    if (!o.suite) throw new Error('--suite is required')
    for (const k of o.required) if (!(k in o.context)) throw new Error(`--required ${k} has no --context value`)
    fs.writeFileSync(o.out, seal({ ...o, plaintext: input }))
  } else if (cmd === 'open') {
    const { plaintext, summary } = open({ key: o.key, context: o.context, message: input })
    fs.writeFileSync(o.out, plaintext)
    process.stdout.write(JSON.stringify(summary) + '\n')
  } else {
    throw new Error(`unknown command ${cmd}`)
  }
}

try {
  main(process.argv.slice(2))
} catch (err) {
  process.stderr.write(`required-ec.js: ${err.message}\n`)
  process.exit(1)
}
