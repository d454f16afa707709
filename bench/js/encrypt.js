#!/usr/bin/env node
// encrypt.js — the JavaScript ESDK (@aws-crypto/client-node 5.0.2) as a
// benchmark peer: stream IN (or stdin) to stdout through encryptStream with a
// raw AES-256 keyring (namespace "bench", name "k", as envelope's
// -k aes:file=KEY,namespace=bench,name=k).
//
//   node encrypt.js --key KEYFILE [--suite 0x0478] [--frame-length 4096] [IN]
//
// Without --suite and --frame-length the SDK's defaults apply (0x0578, 4 KiB
// frames). KEYFILE holds the 32 raw key bytes.
'use strict'
const { keyring, client, parseArgs, run } = require('./common')

const { opts, input } = parseArgs(process.argv.slice(2), ['key', 'suite', 'frame-length'])
const params = {}
if (opts.suite !== undefined) params.suiteId = Number(opts.suite)
if (opts['frame-length'] !== undefined) params.frameLength = Number(opts['frame-length'])
run(input, client().encryptStream(keyring(opts.key), params))
