'use strict'
// Shared by encrypt.js and decrypt.js.
const fs = require('fs')
const { pipeline } = require('stream/promises')
const {
  buildClient,
  CommitmentPolicy,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
} = require('@aws-crypto/client-node')

function keyring (file) {
  if (!file) usage('--key KEYFILE is required')
  const key = fs.readFileSync(file)
  if (key.length !== 32) usage(`${file}: want 32 raw bytes, got ${key.length}`)
  return new RawAesKeyringNode({
    keyNamespace: 'bench',
    keyName: 'k',
    unencryptedMasterKey: new Uint8Array(key),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  })
}

// The SDK's default client (its default commitment policy).
function client () {
  return buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
}

function usage (msg) {
  process.stderr.write(`${msg}\n`)
  process.exit(2)
}

function parseArgs (argv, names) {
  const opts = {}
  const rest = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a.startsWith('--')) {
      const name = a.slice(2)
      if (!names.includes(name) || i + 1 >= argv.length) usage(`unknown flag or missing value: ${a}`)
      opts[name] = argv[++i]
    } else {
      rest.push(a)
    }
  }
  if (rest.length > 1) usage('at most one input file')
  return { opts, input: rest[0] }
}

// run streams input (a path, or stdin) through transform to stdout.
function run (input, transform) {
  const src = input && input !== '-' ? fs.createReadStream(input) : process.stdin
  // Files and /dev/null: an fs write stream (asynchronous writes). Pipes:
  // process.stdout (libuv handles their non-blocking writes).
  const st = fs.fstatSync(1)
  const dst = st.isFIFO() || st.isSocket() ? process.stdout : fs.createWriteStream('', { fd: 1 })
  pipeline(src, transform, dst).catch((err) => {
    process.stderr.write(`${err && err.stack ? err.stack : err}\n`)
    process.exit(1)
  })
}

module.exports = { keyring, client, parseArgs, run }
