#!/usr/bin/env node
// gen-golden.js — (re)writes the golden vectors in testdata/golden with the
// official AWS Encryption SDK for JavaScript (through esdk.js).
//
// Run from anywhere:
//
//   node --security-revert=CVE-2023-46809 interop/js/gen-golden.js   (or: npm run golden --prefix interop/js)
//
// (The flag lets node decrypt RSA PKCS#1 v1.5 when the script checks each
// message it wrote; without it the script re-runs itself under the flag.)
//
// What it writes (testdata/golden/README.md describes it for readers):
//   keys/        fixed keys, created on the first run and reused afterwards:
//                aes128.key aes192.key aes256.key (raw bytes),
//                rsa2048.pem (PKCS#8) + rsa2048.pub.pem (SPKI),
//                rsa3072-pkcs1.pem (PKCS#1 "RSA PRIVATE KEY") + rsa3072-pkcs1.pub.pem (SPKI)
//   *.txt *.bin  plaintexts, derived from fixed seeds (identical on every run)
//   *.esdk       messages written by the SDK (random, so new on every run)
//   manifest.json
//
// The layout — names, order, plaintexts, keys and every manifest field — is
// deterministic; only the message bytes change between runs.
'use strict'

const fs = require('fs')
const os = require('os')
const path = require('path')
const crypto = require('crypto')
const { spawnSync } = require('child_process')
const esdk = require('./esdk')

const SECURITY_REVERT = '--security-revert=CVE-2023-46809'
const GOLDEN = path.resolve(__dirname, '..', '..', 'testdata', 'golden')
const KEYS = path.join(GOLDEN, 'keys')
const NS = 'golden'

const REQUIRE = 'require-encrypt-require-decrypt'
const FORBID = 'forbid-encrypt-allow-decrypt'
const COMMITTING = new Set(['0x0478', '0x0578'])

/** Key specs (paths relative to testdata/golden). enc is what encrypts. */
const KEY = {
  aes128: { dec: `aes:file=keys/aes128.key,namespace=${NS},name=aes128` },
  aes192: { dec: `aes:file=keys/aes192.key,namespace=${NS},name=aes192` },
  aes256: { dec: `aes:file=keys/aes256.key,namespace=${NS},name=aes256` },
}
for (const p of Object.keys(esdk.PADDINGS)) {
  KEY[`rsa2048-${p}`] = {
    dec: `rsa:file=keys/rsa2048.pem,namespace=${NS},name=rsa2048-${p},padding=${p}`,
    enc: `rsa:file=keys/rsa2048.pub.pem,namespace=${NS},name=rsa2048-${p},padding=${p}`,
  }
  KEY[`rsa3072-${p}`] = {
    dec: `rsa:file=keys/rsa3072-pkcs1.pem,namespace=${NS},name=rsa3072-${p},padding=${p}`,
    enc: `rsa:file=keys/rsa3072-pkcs1.pub.pem,namespace=${NS},name=rsa3072-${p},padding=${p}`,
  }
}

/** Deterministic bytes: SHA-256 in counter mode over a seed. */
function seededBytes(seed, n) {
  const out = Buffer.alloc(n)
  for (let off = 0, i = 0; off < n; i++) {
    const block = crypto.createHash('sha256').update(`${seed}/${i}`).digest()
    off += block.copy(out, off)
  }
  return out
}

/** Plaintexts by file name. */
const PLAINTEXTS = {
  'empty.bin': Buffer.alloc(0),
  'one.bin': Buffer.from('A'),
  'two.bin': Buffer.from('AB'),
  'hello.txt': Buffer.from('Hello, envelope! This is a golden vector written by the AWS Encryption SDK for JavaScript.\n'),
  'utf8.txt': Buffer.from('Grüße aus Zürich — 東京 — Ελληνικά — 🔐🔑 — done.\n', 'utf8'),
  'frame-minus-1.bin': seededBytes('frame-minus-1', 511),
  'frame.bin': seededBytes('frame', 512),
  'frame-plus-1.bin': seededBytes('frame-plus-1', 513),
  'frames-3000.bin': seededBytes('frames-3000', 3000),
  'default-frame.bin': seededBytes('default-frame', 4096),
}

const CTX_ASCII = { purpose: 'golden', tenant: 'acme', 'key.with.dots': 'value with spaces' }
const CTX_LOWER = { alpha: 'one', bravo: 'two', charlie: 'three' }
// Mixed case and '_': a locale comparison orders these differently from bytes.
const CTX_MIXED = { Zeta: '1', alpha: '2', _under: '3', Beta_Key: '4', beta_key: '5', ALPHA: '6' }
// Non-ASCII, with 4-byte UTF-8 in a key and a value. '🔐' (U+1F510, F0 9F 94 90)
// sorts after 'ｚ' (U+FF5A, EF BD 9A) by UTF-8 bytes but before it by UTF-16
// code units.
const CTX_NONASCII = { 'clé': 'valeur é', '東京': '日本', 'ｚ': 'fullwidth z', '🔐': 'locked 🔑', 'plain': 'ascii' }

/**
 * The vectors, in manifest order. Fields: name, suite (hex; omit for the
 * SDK's default 0x0578), keys (names in KEY, first is the generator),
 * plaintext (a PLAINTEXTS name), context, frame (omit for 4096),
 * utf8Sorting.
 */
function vectors() {
  const v = []
  for (const id of Object.keys(esdk.SUITES)) {
    v.push({ name: `suite-${id}`, suite: id, keys: ['aes256'], plaintext: 'frames-3000.bin', context: CTX_ASCII, frame: 512 })
  }
  for (const bits of [128, 192, 256]) {
    v.push({ name: `aes${bits}`, keys: [`aes${bits}`], plaintext: 'hello.txt', context: CTX_ASCII })
  }
  for (const p of Object.keys(esdk.PADDINGS)) {
    v.push({ name: `rsa2048-${p}`, keys: [`rsa2048-${p}`], plaintext: 'hello.txt', context: CTX_ASCII })
  }
  v.push({ name: 'rsa3072-pkcs1key-pkcs1', keys: ['rsa3072-pkcs1'], plaintext: 'hello.txt', context: CTX_ASCII })
  v.push({ name: 'rsa3072-pkcs1key-oaep-sha256', keys: ['rsa3072-oaep-sha256'], plaintext: 'hello.txt', context: CTX_ASCII })
  v.push({ name: 'rsa2048-oaep-sha1-suite-0x0014', suite: '0x0014', keys: ['rsa2048-oaep-sha1'], plaintext: 'hello.txt', context: CTX_ASCII })
  v.push({ name: 'rsa2048-oaep-sha512-suite-0x0478', suite: '0x0478', keys: ['rsa2048-oaep-sha512'], plaintext: 'hello.txt', context: CTX_ASCII })
  v.push({ name: 'multi-aes256-rsa2048', keys: ['aes256', 'rsa2048-oaep-sha256'], plaintext: 'frames-3000.bin', context: CTX_ASCII, frame: 512 })
  v.push({ name: 'multi-rsa3072-aes128', keys: ['rsa3072-oaep-sha1', 'aes128'], plaintext: 'hello.txt', context: CTX_ASCII })
  const sizes = [
    ['0', 'empty.bin'],
    ['1', 'one.bin'],
    ['511', 'frame-minus-1.bin'],
    ['512', 'frame.bin'],
    ['513', 'frame-plus-1.bin'],
    ['3000', 'frames-3000.bin'],
  ]
  for (const suite of ['0x0578', '0x0478']) {
    for (const [n, pt] of sizes) {
      v.push({ name: `size${n}-frame512-${suite}`, suite, keys: ['aes256'], plaintext: pt, context: CTX_ASCII, frame: 512 })
    }
  }
  for (const [n, pt] of [sizes[0], sizes[3], sizes[4]]) {
    v.push({ name: `size${n}-frame512-0x0178`, suite: '0x0178', keys: ['aes256'], plaintext: pt, context: CTX_ASCII, frame: 512 })
  }
  for (const [n, pt] of [['0', 'empty.bin'], ['1', 'one.bin'], ['2', 'two.bin']]) {
    v.push({ name: `size${n}-frame1`, keys: ['aes256'], plaintext: pt, context: CTX_ASCII, frame: 1 })
  }
  v.push({ name: 'size4096-frame4096', keys: ['aes256'], plaintext: 'default-frame.bin', context: CTX_ASCII })
  for (const suite of ['0x0578', '0x0478', '0x0078', '0x0378']) {
    v.push({ name: `ctx-empty-${suite}`, suite, keys: ['aes256'], plaintext: 'hello.txt', context: {} })
  }
  v.push({ name: 'ctx-lowercase-no-utf8sorting', keys: ['aes256'], plaintext: 'hello.txt', context: CTX_LOWER })
  v.push({ name: 'ctx-mixedcase-utf8sorting', keys: ['aes256'], plaintext: 'hello.txt', context: CTX_MIXED, utf8Sorting: true })
  v.push({ name: 'ctx-mixedcase-utf8sorting-0x0478', suite: '0x0478', keys: ['aes256'], plaintext: 'hello.txt', context: CTX_MIXED, utf8Sorting: true })
  v.push({ name: 'ctx-nonascii-utf8sorting', keys: ['aes256'], plaintext: 'utf8.txt', context: CTX_NONASCII, utf8Sorting: true })
  v.push({ name: 'ctx-nonascii-utf8sorting-0x0478', suite: '0x0478', keys: ['aes256'], plaintext: 'utf8.txt', context: CTX_NONASCII, utf8Sorting: true })
  v.push({ name: 'ctx-nonascii-utf8sorting-0x0178', suite: '0x0178', keys: ['aes256'], plaintext: 'utf8.txt', context: CTX_NONASCII, utf8Sorting: true })
  v.push({ name: 'ctx-nonascii-rsa2048-oaep-sha256', keys: ['rsa2048-oaep-sha256'], plaintext: 'utf8.txt', context: CTX_NONASCII })
  v.push({ name: 'ctx-nonascii-multi-utf8sorting', keys: ['aes192', 'rsa2048-oaep-sha384'], plaintext: 'utf8.txt', context: CTX_NONASCII, utf8Sorting: true })
  return v
}

/** Creates the fixed keys unless they exist already. */
function ensureKeys() {
  fs.mkdirSync(KEYS, { recursive: true })
  for (const bits of [128, 192, 256]) {
    const f = path.join(KEYS, `aes${bits}.key`)
    if (!fs.existsSync(f)) fs.writeFileSync(f, crypto.randomBytes(bits / 8))
  }
  const rsa = [
    ['rsa2048', 2048, 'pkcs8'],
    ['rsa3072-pkcs1', 3072, 'pkcs1'],
  ]
  for (const [name, bits, type] of rsa) {
    const priv = path.join(KEYS, `${name}.pem`)
    const pub = path.join(KEYS, `${name}.pub.pem`)
    if (!fs.existsSync(priv)) {
      const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: bits })
      fs.writeFileSync(priv, privateKey.export({ type, format: 'pem' }))
    }
    const derived = crypto.createPublicKey(fs.readFileSync(priv)).export({ type: 'spki', format: 'pem' })
    if (!fs.existsSync(pub) || fs.readFileSync(pub, 'utf8') !== derived) fs.writeFileSync(pub, derived)
  }
}

/** Parses a manifest key spec with its path made absolute. */
function absSpec(spec) {
  return esdk.parseKeySpec(spec.replace(/file=([^,]*)/, (_, f) => `file=${path.join(GOLDEN, f)}`))
}

/** Removes what a previous run wrote (but never the keys). */
function clean() {
  for (const f of fs.readdirSync(GOLDEN)) {
    if (/\.(esdk|bin|txt)$/.test(f) || f === 'manifest.json') fs.rmSync(path.join(GOLDEN, f))
  }
}

async function main() {
  if (!process.execArgv.includes(SECURITY_REVERT)) {
    // The PKCS#1 v1.5 check below needs this flag: run again with it.
    const r = spawnSync(process.execPath, [SECURITY_REVERT, ...process.execArgv, __filename, ...process.argv.slice(2)], {
      stdio: 'inherit',
    })
    if (r.error) throw r.error
    process.exitCode = r.status === null ? 1 : r.status
    return
  }
  fs.mkdirSync(GOLDEN, { recursive: true })
  ensureKeys()
  clean()
  for (const [name, data] of Object.entries(PLAINTEXTS)) fs.writeFileSync(path.join(GOLDEN, name), data)

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'golden-'))
  const manifest = []
  try {
    for (const v of vectors()) {
      const suite = v.suite || '0x0578'
      const policy = COMMITTING.has(suite) ? REQUIRE : FORBID
      const message = `${v.name}.esdk`
      const opts = {
        keys: v.keys.map((k) => absSpec(KEY[k].enc || KEY[k].dec)),
        suite: esdk.SUITES[suite],
        frameSize: v.frame,
        context: v.context,
        policy,
        utf8Sorting: !!v.utf8Sorting,
        in: path.join(GOLDEN, v.plaintext),
        out: path.join(GOLDEN, message),
      }
      const written = await esdk.encryptFile(opts)

      // Read it back through the decrypt path with the manifest's keys.
      const entry = {
        name: v.name,
        message,
        plaintext: v.plaintext,
        suite,
        keys: v.keys.map((k) => KEY[k].dec),
        context: v.context,
        frameLength: written.frameLength,
        commitmentPolicy: policy,
        utf8Sorting: !!v.utf8Sorting,
      }
      const back = path.join(tmp, `${v.name}.out`)
      const info = await esdk.decryptFile({
        keys: entry.keys.map(absSpec),
        context: entry.context,
        policy,
        utf8Sorting: entry.utf8Sorting,
        in: opts.out,
        out: back,
      })
      if (!fs.readFileSync(back).equals(PLAINTEXTS[v.plaintext])) throw new Error(`${v.name}: plaintext differs`)
      if (info.suite !== suite) throw new Error(`${v.name}: suite ${info.suite}, want ${suite}`)
      if (info.frameLength !== (v.frame || 4096)) throw new Error(`${v.name}: frame length ${info.frameLength}`)
      manifest.push(entry)
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  fs.writeFileSync(path.join(GOLDEN, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
  console.log(`wrote ${manifest.length} vectors to ${GOLDEN}`)
}

main().catch((err) => {
  console.error(`gen-golden: ${err && err.stack ? err.stack : err}`)
  process.exitCode = 1
})
