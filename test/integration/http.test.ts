import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger, createMemoryBus, MAX_COMMAND_BYTES } from '@apiary/shared'
import { startQueen, type Queen } from '@apiary/queen'
import { startWorker, type Worker } from '@apiary/worker'
import { startHive, type Hive } from '@apiary/hive'
import { type TempDir, tempDir } from '../harness/index.ts'

/** Bad input at the HTTP boundary, over real HTTP: each answer names the field, nothing dies. */
describe('queen HTTP API: bad input', () => {
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
    queen = await startQueen({ bus, log, stateDir: dir.path, host: '127.0.0.1', port: 0, tokenFile: `${dir.path}/token`, keepaliveMs: 100 })
    hive = startHive({ bus, log, hiveId: 'h', region: 'default', heartbeatMs: 1000 })
    worker = startWorker({ bus, log, nodeId: 'n1', region: 'default', labels: {}, heartbeatMs: 1000 })
    await bus.flush()
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

  it('answers health without a token', async () => {
    expect(await call('GET', '/healthz', undefined, null)).toEqual({ status: 200, body: { ok: true } })
    expect(await call('GET', '/readyz', undefined, null)).toEqual({ status: 200, body: { ready: true } })
  })

  it('refuses a missing or wrong token with 401 and never logs the token', async () => {
    expect((await call('GET', '/v1/jobs', undefined, null)).status).toBe(401)
    const wrong = 'wrong-token-value-1234567890'
    const r = await call('GET', '/v1/jobs', undefined, wrong)
    expect(r).toMatchObject({ status: 401, body: { error: { code: 'unauthorized' } } })
    expect(logLines.join('')).toContain('unauthorized request')
    expect(logLines.join('')).not.toContain(wrong)
    expect(logLines.join('')).not.toContain(queen.token)
  })

  it.each([
    ['malformed JSON', '{"operation": ', 'body', /not valid JSON/],
    ['an unknown operation type', { operation: { type: 'format-disk' }, targets: 'all' }, 'operation.type', /./],
    ['a missing field', { operation: { type: 'ping' } }, 'targets', /./],
    ['a missing argv', { operation: { type: 'exec' }, targets: 'all' }, 'operation.argv', /required/],
    ['a shell string without shell: true', { operation: { type: 'exec', command: 'ls' }, targets: 'all' }, 'operation.command', /shell: true/],
    ['an invalid selector', { operation: { type: 'ping' }, targets: 'role=' }, 'targets', /role=/],
    ['an over-long command', { operation: { type: 'exec', argv: ['echo', 'x'.repeat(MAX_COMMAND_BYTES)] }, targets: 'all' }, 'operation.argv', /bytes/],
    ['an unknown field', { operation: { type: 'ping' }, targets: 'all', priority: 9 }, '', /priority/],
    ['a bad concurrency', { operation: { type: 'ping' }, targets: 'all', rollout: { concurrency: 0 } }, 'rollout.concurrency', /./],
    ['a selector that matches nothing', { operation: { type: 'ping' }, targets: 'nothing-*' }, 'targets', /matches no node/],
  ])('answers %s with 400 naming the field', async (_what, body, field, message) => {
    const r = await submit(body)
    expect(r.status).toBe(400)
    expect(r.body.error?.code).toBe('invalid_input')
    if (field) expect(r.body.error?.field).toBe(field)
    expect(r.body.error?.message).toMatch(message)
  })

  it('refuses a body over the limit', async () => {
    const r = await submit(JSON.stringify({ operation: { type: 'ping' }, targets: 'all', pad: 'x'.repeat(3 * 1024 * 1024) }))
    expect(r.status).toBe(400)
  })

  it('answers unknown jobs and routes with 404, bad queries with 400', async () => {
    expect((await call('GET', '/v1/jobs/jnope0000000000')).status).toBe(404)
    expect((await call('GET', '/v1/jobs/../../etc/passwd')).status).toBe(404)
    expect((await call('POST', '/v1/jobs/jnope0000000000/cancel')).status).toBe(404)
    expect((await call('GET', '/v1/elsewhere')).status).toBe(404)
    expect(await call('GET', '/v1/jobs?state=exploded')).toMatchObject({ status: 400, body: { error: { field: 'query.state' } } })
    expect(await call('GET', '/v1/jobs?limit=-1')).toMatchObject({ status: 400, body: { error: { field: 'query.limit' } } })
  })

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
