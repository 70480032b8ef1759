import { chmod, copyFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connect } from 'node:tls'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '@apiary/shared/runtime'
import { type Embedded, startEmbedded } from '@apiary/keeper'
import { runBin, startBin, type TempDir, tempDir, waitUntil } from '../harness/index.ts'
import { type CertPair, fingerprint, makeTestCa, type TestCa } from '../harness/tls.ts'

/** The certificate a new TLS connection to the port is shown, trusting `ca`. */
async function servedFingerprint(port: number, caFile: string): Promise<string> {
  const ca = await readFile(caFile, 'utf8')
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const fp = socket.getPeerCertificate().fingerprint256
      socket.end()
      resolve(fp)
    })
    socket.once('error', reject)
  })
}

describe('the queen over HTTPS, with keeper', () => {
  let dir: TempDir
  let good: TestCa
  let stranger: TestCa
  let served: CertPair
  let cluster: Embedded
  const logs: Array<{ msg: string; problem?: string; fingerprint?: string }> = []
  let tokenFile = ''
  let readCa = ''
  let otherCa = ''

  beforeAll(async () => {
    dir = await tempDir('https')
    good = await makeTestCa(dir.path, 'good')
    stranger = await makeTestCa(dir.path, 'stranger')
    readCa = good.ca
    otherCa = stranger.ca
    const first = await good.server('queen-1')
    // The files the queen serves from; the tests put other pairs in their place.
    served = { cert: join(dir.path, 'served.pem'), key: join(dir.path, 'served.key') }
    await copyFile(first.cert, served.cert)
    await copyFile(first.key, served.key)
    const log = createLogger({ component: 'test', level: 'info', destination: { write: (line: string) => void logs.push(JSON.parse(line) as (typeof logs)[number]) } })
    cluster = await startEmbedded({
      log,
      queen: { stateDir: join(dir.path, 'state'), tls: { certFile: served.cert, keyFile: served.key, pollMs: 50 } },
      defaults: { heartbeatMs: 200 },
      hives: [{}],
      workers: [{ nodeId: 'web-1' }],
    })
    tokenFile = join(dir.path, 'state', 'token')
  })
  afterAll(async () => {
    await cluster?.close()
    await dir?.remove()
  })

  const keeper = (args: string[]) => runBin('keeper', ['--queen', cluster.queen.url, '--token-file', tokenFile, ...args], { APIARY_CA: '', APIARY_QUEEN_URL: '' })

  it('serves https:// and keeper runs a job there, trusting the private CA, and streams it to the end', async () => {
    expect(cluster.queen.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    const r = await keeper(['--ca', readCa, 'run', '--', 'echo', 'over-tls'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('over-tls')
    expect(r.stdout).toMatch(/1 ok/)
  })

  it.each([
    ['a CA that did not sign it', () => ['--ca', otherCa]],
    ['the system store', () => []],
    ['--insecure, which never skips the check', () => ['--insecure']],
  ])('keeper refuses the queen’s certificate with %s, saying what to do', async (_, flags) => {
    const r = await keeper([...flags(), 'jobs'])
    expect(r.code).toBe(4)
    expect(r.stderr).toContain(`cannot reach the queen at ${cluster.queen.url}: its TLS certificate is not trusted (`)
    expect(r.stderr).toContain('give the CA that signed it with --ca FILE (APIARY_CA)')
  })

  it('keeper names --ca when its file is missing or holds no certificate', async () => {
    const missing = await keeper(['--ca', join(dir.path, 'nope.pem'), 'jobs'])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toBe(`keeper: --ca file ${join(dir.path, 'nope.pem')} does not exist\n`)
    const notPem = await keeper(['--ca', tokenFile, 'jobs'])
    expect(notPem.code).toBe(2)
    expect(notPem.stderr).toBe(`keeper: --ca file ${tokenFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)\n`)
  })

  it('takes a new certificate and key without a restart; refuses a bad pair and keeps the last good one', async () => {
    const port = cluster.queen.port
    expect(await servedFingerprint(port, readCa)).toBe(await fingerprint(served.cert))
    const next = await good.server('queen-2')
    const nextPrint = await fingerprint(next.cert)
    await copyFile(next.cert, served.cert)
    await copyFile(next.key, served.key)
    await waitUntil(async () => (await servedFingerprint(port, readCa)) === nextPrint, 'the new certificate on a new connection')
    await waitUntil(() => logs.some((l) => l.msg === 'reloaded the TLS certificate and key' && l.fingerprint === nextPrint), 'the reload to be logged')

    // A certificate with another certificate's key: refused, logged, the last good pair served.
    const third = await good.server('queen-3')
    await copyFile(third.cert, served.cert)
    await waitUntil(() => logs.some((l) => l.msg === 'refused the new TLS certificate and key; keeping the last good pair'), 'the refusal to be logged')
    const refusal = logs.find((l) => l.msg.startsWith('refused the new TLS'))!
    expect(refusal.problem).toBe(`--tls-key file ${served.key} is not the key of the certificate in ${served.cert}`)
    expect(await servedFingerprint(port, readCa)).toBe(nextPrint)
    const r = await keeper(['--ca', readCa, 'jobs'])
    expect(r.code).toBe(0)
    // Its key after it: the pair is whole again and is taken.
    await copyFile(third.key, served.key)
    const thirdPrint = await fingerprint(third.cert)
    await waitUntil(async () => (await servedFingerprint(port, readCa)) === thirdPrint, 'the completed pair on a new connection')
  })
})

describe('apiary-queen --tls-cert, --tls-key', () => {
  let dir: TempDir
  beforeAll(async () => {
    dir = await tempDir('queen-tls')
  })
  afterAll(async () => {
    await dir?.remove()
  })

  it('serves HTTPS from its flags, which keeper reaches with --ca', async () => {
    const ca = await makeTestCa(dir.path, 'ca')
    const pair = await ca.server('queen')
    const state = join(dir.path, 'state')
    const queen = startBin('apiary-queen', ['--port', '0', '--state-dir', state, '--tls-cert', pair.cert, '--tls-key', pair.key])
    try {
      const line = await queen.waitFor(/queen listening/)
      const url = (JSON.parse(line) as { url: string }).url
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
      const r = await runBin('keeper', ['--queen', url, '--token-file', join(state, 'token'), '--ca', ca.ca, 'jobs', '-o', 'json'])
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
    } finally {
      await queen.stop()
    }
  })

  it.each([
    [['--tls-cert', 'c.pem'], '--tls-key (or APIARY_TLS_KEY) is required with --tls-cert'],
    [['--tls-key', 'k.pem'], '--tls-cert (or APIARY_TLS_CERT) is required with --tls-key'],
  ])('%j alone exits 2 naming the other', async (args, message) => {
    const r = await runBin('apiary-queen', ['--state-dir', join(dir.path, 'unused'), ...args], { APIARY_TLS_CERT: '', APIARY_TLS_KEY: '' })
    expect(r.code).toBe(2)
    expect(r.stderr).toBe(`apiary-queen: ${message}\n`)
  })

  it('refuses to start on a key file others may read, or a key that is not the certificate’s', async () => {
    const ca = await makeTestCa(dir.path, 'bad')
    const a = await ca.server('a')
    const b = await ca.server('b')
    const state = join(dir.path, 'state-bad')
    const mismatched = await runBin('apiary-queen', ['--port', '0', '--state-dir', state, '--tls-cert', a.cert, '--tls-key', b.key])
    expect(mismatched.code).toBe(2)
    expect(mismatched.stderr).toContain(`apiary-queen: --tls-key file ${b.key} is not the key of the certificate in ${a.cert}`)
    await chmod(a.key, 0o644)
    const loose = await runBin('apiary-queen', ['--port', '0', '--state-dir', state, '--tls-cert', a.cert, '--tls-key', a.key])
    expect(loose.code).toBe(2)
    expect(loose.stderr).toContain(`--tls-key file ${a.key} is readable by others (mode 644); run: chmod 600 ${a.key}`)
    expect(loose.stderr).not.toContain('PRIVATE KEY')
  })
})
