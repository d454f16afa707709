#!/usr/bin/env node
// selftest.js — checks that esdk.js round-trips with itself through its
// command line: every suite, raw AES 128/192/256, raw RSA 2048/3072/4096 with
// each padding, a multi-keyring, empty/ASCII/non-ASCII contexts and frame
// sizes 1/4096/65536/1048576 around their boundaries, plus one 12 MiB file.
//
// Run: node selftest.js   (or npm test). Prints one line per case and a
// closing "N passed, N failed" line; exits non-zero on any failure.
'use strict'

const fs = require('fs')
const os = require('os')
const path = require('path')
const crypto = require('crypto')
const { execFile } = require('child_process')
const { promisify } = require('util')
const { SUITES } = require('./esdk')

const run = promisify(execFile)
const ESDK = path.join(__dirname, 'esdk.js')
const NODE_ARGS = ['--security-revert=CVE-2023-46809', ESDK]
const COMMITTING = new Set(['0x0478', '0x0578'])

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'esdk-selftest-'))

function writeKeys() {
  const keys = {}
  for (const bits of [128, 192, 256]) {
    const file = path.join(dir, `aes${bits}.key`)
    fs.writeFileSync(file, crypto.randomBytes(bits / 8))
    keys[`aes${bits}`] = `aes:file=${file},namespace=selftest,name=aes${bits}`
  }
  // One base64 key file with a trailing newline, to exercise that form.
  const b64 = path.join(dir, 'aes256.b64')
  fs.writeFileSync(b64, crypto.randomBytes(32).toString('base64') + '\n')
  keys.aes256b64 = `aes:file=${b64},namespace=selftest,name=aes256b64`
  for (const bits of [2048, 3072, 4096]) {
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: bits })
    const priv = path.join(dir, `rsa${bits}.pem`)
    const pub = path.join(dir, `rsa${bits}.pub.pem`)
    fs.writeFileSync(priv, privateKey.export({ type: bits === 3072 ? 'pkcs1' : 'pkcs8', format: 'pem' }))
    fs.writeFileSync(pub, crypto.createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }))
    keys[`rsa${bits}`] = { priv, pub }
  }
  return keys
}

function rsaSpec(k, bits, padding, which) {
  return `rsa:file=${k[`rsa${bits}`][which]},namespace=selftest,name=rsa${bits}-${padding},padding=${padding}`
}

function ctxArgs(ctx) {
  return Object.entries(ctx).flatMap(([k, v]) => ['--context', `${k}=${v}`])
}

/**
 * One round trip: encrypt with encKeys, decrypt with decKeys, compare.
 */
async function roundTrip(c) {
  const base = path.join(dir, c.name.replace(/[^A-Za-z0-9._-]/g, '_'))
  const plain = `${base}.in`
  const ct = `${base}.esdk`
  const out = `${base}.out`
  const data = crypto.randomBytes(c.size)
  fs.writeFileSync(plain, data)
  const common = []
  if (c.policy) common.push('--commitment-policy', c.policy)
  if (c.utf8Sorting) common.push('--utf8-sorting')
  const enc = ['encrypt', ...c.encKeys.flatMap((k) => ['--key', k]), ...common, ...ctxArgs(c.context || {})]
  if (c.suite) enc.push('--suite', c.suite)
  if (c.frame) enc.push('--frame-size', String(c.frame))
  enc.push('--in', plain, '--out', ct)
  await run(process.execPath, [...NODE_ARGS, ...enc], { maxBuffer: 1 << 20 })
  const dec = ['decrypt', ...c.decKeys.flatMap((k) => ['--key', k]), ...common, ...ctxArgs(c.context || {})]
  dec.push('--in', ct, '--out', out)
  const { stdout } = await run(process.execPath, [...NODE_ARGS, ...dec], { maxBuffer: 1 << 20 })
  // Under --security-revert node prints a SECURITY WARNING line to stdout
  // first: the JSON summary is the last line.
  const info = JSON.parse(stdout.trim().split('\n').pop())
  const got = fs.readFileSync(out)
  if (!got.equals(data)) throw new Error('plaintext differs')
  if (c.suite && info.suite !== c.suite) throw new Error(`suite ${info.suite}, want ${c.suite}`)
  if (c.frame && info.frameLength !== c.frame) throw new Error(`frame ${info.frameLength}, want ${c.frame}`)
  for (const [k, v] of Object.entries(c.context || {})) {
    if (info.context[k] !== v) throw new Error(`context ${k}=${info.context[k]}, want ${v}`)
  }
  for (const f of [plain, ct, out]) fs.rmSync(f, { force: true })
}

function cases(k) {
  const list = []
  const ascii = { purpose: 'selftest', tenant: 'acme' }
  const nonAscii = { 'clé': 'valeur é', '🔐': 'verrou 🔐', 'Mixed_Case': 'x', 'lower': 'y' }
  for (const id of Object.keys(SUITES)) {
    list.push({
      name: `suite-${id}`,
      suite: id,
      policy: COMMITTING.has(id) ? undefined : 'forbid-encrypt-allow-decrypt',
      encKeys: [k.aes256],
      decKeys: [k.aes256],
      context: ascii,
      size: 10000,
      frame: 4096,
    })
  }
  for (const bits of [128, 192, 256]) {
    list.push({ name: `aes${bits}`, encKeys: [k[`aes${bits}`]], decKeys: [k[`aes${bits}`]], context: ascii, size: 5000 })
  }
  list.push({ name: 'aes256-base64-file', encKeys: [k.aes256b64], decKeys: [k.aes256b64], size: 5000 })
  for (const bits of [2048, 3072, 4096]) {
    for (const p of ['pkcs1', 'oaep-sha1', 'oaep-sha256', 'oaep-sha384', 'oaep-sha512']) {
      list.push({
        name: `rsa${bits}-${p}`,
        encKeys: [rsaSpec(k, bits, p, 'pub')],
        decKeys: [rsaSpec(k, bits, p, 'priv')],
        context: ascii,
        size: 5000,
      })
    }
  }
  const multi = [k.aes128, rsaSpec(k, 2048, 'oaep-sha256', 'pub')]
  list.push({ name: 'multi-decrypt-aes', encKeys: multi, decKeys: [k.aes128], size: 5000 })
  list.push({ name: 'multi-decrypt-rsa', encKeys: multi, decKeys: [rsaSpec(k, 2048, 'oaep-sha256', 'priv')], size: 5000 })
  // A decrypting multi-keyring whose first key does not match the message.
  list.push({ name: 'multi-decrypt-second-key', encKeys: multi, decKeys: [k.aes256, rsaSpec(k, 2048, 'oaep-sha256', 'priv')], size: 5000 })
  list.push({ name: 'ctx-empty', encKeys: [k.aes256], decKeys: [k.aes256], context: {}, size: 100 })
  list.push({ name: 'ctx-ascii-lower', encKeys: [k.aes256], decKeys: [k.aes256], context: { alpha: 'a', beta: 'b' }, size: 100 })
  list.push({ name: 'ctx-nonascii-utf8', encKeys: [k.aes256], decKeys: [k.aes256], context: nonAscii, utf8Sorting: true, size: 100 })
  list.push({ name: 'ctx-nonascii-locale', encKeys: [k.aes256], decKeys: [k.aes256], context: nonAscii, size: 100 })
  for (const frame of [1, 4096, 65536, 1048576]) {
    const sizes = frame === 1 ? [0, 1, 2] : [0, 1, frame - 1, frame, frame + 1]
    for (const size of sizes) {
      list.push({ name: `frame${frame}-size${size}`, frame, encKeys: [k.aes256], decKeys: [k.aes256], size })
    }
  }
  list.push({ name: 'large-12MiB-frame65536', frame: 65536, encKeys: [k.aes256], decKeys: [k.aes256], size: 12 << 20 })
  // Wrong key: must fail.
  list.push({ name: 'wrong-key-fails', encKeys: [k.aes256], decKeys: [k.aes128], size: 10, expectFail: true })
  return list
}

async function main() {
  const keys = writeKeys()
  const list = cases(keys)
  let passed = 0
  let failed = 0
  // Two at a time: this runs on 2-core machines.
  let next = 0
  async function worker() {
    while (next < list.length) {
      const c = list[next++]
      const t0 = Date.now()
      let err
      try {
        await roundTrip(c)
      } catch (e) {
        err = e
      }
      const ok = c.expectFail ? !!err : !err
      if (ok) passed++
      else failed++
      const why = err ? ` (${String(err.stderr || err.message).trim().split('\n').pop()})` : ''
      console.log(`${ok ? 'ok  ' : 'FAIL'} ${c.name} ${Date.now() - t0}ms${c.expectFail || !ok ? why : ''}`)
    }
  }
  await Promise.all([worker(), worker()])
  fs.rmSync(dir, { recursive: true, force: true })
  console.log(`${passed} passed, ${failed} failed`)
  process.exitCode = failed ? 1 : 0
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
