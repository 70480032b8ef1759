#!/usr/bin/env node
// The images' health check: asks the daemon in this container whether it is ready, over
// loopback, and exits 0 (ready) or 1 (not, or no answer within 2 s).
//
//   node deploy/probe.mjs queen    GET /readyz on the API (APIARY_PORT; HTTPS when APIARY_TLS_CERT is set)
//   node deploy/probe.mjs hive     GET /readyz on the metrics port (APIARY_METRICS_PORT)
//   node deploy/probe.mjs worker   the same
//
// Over HTTPS it trusts the queen's own certificate (APIARY_TLS_CERT) and nothing else; the name
// is not checked, since it asks 127.0.0.1, which the certificate need not name.
import { readFileSync } from 'node:fs'
import { get as httpGet } from 'node:http'
import { get as httpsGet } from 'node:https'

const role = process.argv[2]
const env = process.env
const fail = (why) => {
  process.stderr.write(`probe: ${why}\n`)
  process.exit(1)
}

let url
let options = {}
if (role === 'queen') {
  const port = env.APIARY_PORT ?? '7070'
  if (env.APIARY_TLS_CERT) {
    url = `https://127.0.0.1:${port}/readyz`
    options = { ca: readFileSync(env.APIARY_TLS_CERT), checkServerIdentity: () => undefined }
  } else url = `http://127.0.0.1:${port}/readyz`
} else if (role === 'hive' || role === 'worker') {
  if (!env.APIARY_METRICS_PORT) fail('APIARY_METRICS_PORT is not set: the health endpoints are off')
  url = `http://127.0.0.1:${env.APIARY_METRICS_PORT}/readyz`
} else fail(`usage: probe.mjs queen|hive|worker (not ${role ?? 'nothing'})`)

const req = (url.startsWith('https:') ? httpsGet : httpGet)(url, { ...options, timeout: 2000 }, (res) => {
  res.resume()
  if (res.statusCode === 200) process.exit(0)
  fail(`${url} answered ${res.statusCode}`)
})
req.on('timeout', () => req.destroy(new Error('no answer within 2 s')))
req.on('error', (err) => fail(`${url}: ${err.message}`))
