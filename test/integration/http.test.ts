import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '@apiary/shared/runtime'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { startQueen, type Queen } from '@apiary/queen'
import { startWorker, type Worker } from '@apiary/worker'
import { startHive, type Hive } from '@apiary/hive'
import { type TempDir, tempDir, testQueenKey, testSigner, waitUntil } from '../harness/index.ts'

/**
 * The event stream over real HTTP: a bad Last-Event-ID, keepalives on a quiet stream, and a queen
 * that still serves after it all. The bad-input table of the other routes runs on the app itself
 * (packages/queen/src/http/app.test.ts).
 */
describe('queen HTTP API: the event stream', () => {
  let dir: TempDir
  let queen: Queen
  let worker: Worker
  let hive: Hive
  const logLines: string[] = []
  const bus = createMemoryBus(createLogger({ component: 'test', level: 'silent' }))

  beforeAll(async () => {
    dir = await tempDir('http')
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logLines.push(String(chunk))
        cb()
      },
    })
    const log = createLogger({ component: 'queen', level: 'info', destination: sink })
    queen = await startQueen({ bus, log, stateDir: dir.path, host: '127.0.0.1', port: 0, tokenFile: `${dir.path}/token`, keepaliveMs: 100, signer: testSigner })
    hive = startHive({ bus, log, hiveId: 'h', region: 'default', heartbeatMs: 1000, queenKey: testQueenKey })
    worker = startWorker({ bus, log, nodeId: 'n1', region: 'default', labels: {}, heartbeatMs: 1000, queenKey: testQueenKey })
    await bus.flush()
    // A job is submitted only once the queen heard the worker (else `all` matches no node).
    await waitUntil(async () => {
      const res = await fetch(`${queen.url}/v1/nodes`, { headers: { authorization: `Bearer ${queen.token}` } })
      const body = (await res.json()) as { nodes?: Array<{ id: string; online: boolean }> }
      return body.nodes?.some((n) => n.id === 'n1' && n.online) === true
    }, 'the worker to be online')
  })
  afterAll(async () => {
    await worker.close()
    await hive.close()
    await queen.close()
    await bus.close()
    await dir.remove()
  })

  const call = async (method: string, path: string, body?: string, token: string | null = queen.token, headers: Record<string, string> = {}) => {
    const res = await fetch(`${queen.url}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body === undefined ? {} : { body }),
    })
    return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string; field?: string } } }
  }
  const submit = (body: unknown) => call('POST', '/v1/jobs', typeof body === 'string' ? body : JSON.stringify(body))

  it('refuses a Last-Event-ID that is not a number', async () => {
    const ok = await submit({ operation: { type: 'ping' }, targets: 'all' })
    expect(ok.status).toBe(201)
    const { jobId } = ok.body as unknown as { jobId: string }
    const r = await call('GET', `/v1/jobs/${jobId}/stream`, undefined, queen.token, { 'last-event-id': 'abc' })
    expect(r).toMatchObject({ status: 400, body: { error: { field: 'Last-Event-ID' } } })
  })

  it('sends keepalive comments on a quiet stream', async () => {
    const created = await submit({ operation: { type: 'exec', shell: true, command: 'echo go; sleep 2' }, targets: 'all' })
    const { jobId } = created.body as unknown as { jobId: string }
    const ac = new AbortController()
    const res = await fetch(`${queen.url}/v1/jobs/${jobId}/stream`, { headers: { authorization: `Bearer ${queen.token}` }, signal: ac.signal })
    let text = ''
    const decoder = new TextDecoder()
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true })
      if (text.split(': keepalive\n\n').length > 2) break
    }
    ac.abort()
    expect(text.startsWith(': apiary event stream\n\n')).toBe(true)
    expect(text).toContain('event: job.submitted')
    await call('POST', `/v1/jobs/${jobId}/cancel`)
  })

  it('still serves and keeps its jobs after all that', async () => {
    const r = await call('GET', '/v1/jobs')
    expect(r.status).toBe(200)
    expect((r.body as unknown as { jobs: unknown[] }).jobs.length).toBeGreaterThan(0)
  })
})
