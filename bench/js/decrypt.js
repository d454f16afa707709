#!/usr/bin/env node
// decrypt.js — the JavaScript ESDK (@aws-crypto/client-node 5.0.2) as a
// benchmark peer: stream the message IN (or stdin) to stdout through
// decryptStream with the raw AES-256 keyring of encrypt.js.
//
//   node decrypt.js --key KEYFILE [IN]
'use strict'
const { keyring, client, parseArgs, run } = require('./common')

const { opts, input } = parseArgs(process.argv.slice(2), ['key'])
run(input, client().decryptStream(keyring(opts.key)))
