import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSigner, generateSigningKey, MAX_COMMAND_BYTES } from '@apiary/shared'
import { createLogger } from '@apiary/shared/runtime'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { createQueen, type QueenCore } from '../index.ts'

/** Bad input at the HTTP boundary, on the app itself (no socket, no cluster): each answer names the field. */
describe('queen HTTP API: bad input', () => {
  let dir: string
  let queen: QueenCore
  const logLines: string[] = []
  const bus = createMemoryBus(createLogger({ component: 'test', level: 'silent' }))

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apiary-app-'))
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logLines.push(String(chunk))
        cb()
      },
    })
    const log = createLogger({ component: 'queen', level: 'info', destination: sink })
    queen = await createQueen({ bus, log, stateDir: dir, host: '127.0.0.1', port: 0, tokenFile: join(dir, 'token'), signer: createSigner(generateSigningKey().privatePem) })
  })
  afterAll(async () => {
    await queen.close()
    await bus.close()
    await rm(dir, { recursive: true, force: true })
  })

  const call = async (method: string, path: string, body?: string, token: string | null = queen.token) => {
    const res = await queen.app.request(path, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body === undefined ? {} : { body }),
    })
    return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string; field?: string } } }
  }
  const submit = (body: unknown) => call('POST', '/v1/jobs', typeof body === 'string' ? body : JSON.stringify(body))

  it('answers health without a token', async () => {
    expect(await call('GET', '/healthz', undefined, null)).toEqual({ status: 200, body: { ok: true } })
    expect(await call('GET', '/readyz', undefined, null)).toEqual({ status: 200, body: { ready: true, role: 'leader' } })
  })

  it('refuses a missing or wrong token with 401 on every route and never logs the token', async () => {
    for (const [method, path] of [
      ['GET', '/v1/jobs'],
      ['POST', '/v1/jobs'],
      ['POST', '/v1/plan'],
      ['GET', '/v1/nodes'],
      ['POST', '/v1/jobs/j0000000000000/rerun'],
      ['GET', '/v1/jobs/j0000000000000/stream'],
    ] as const) {
      expect((await call(method, path, undefined, null)).status, `${method} ${path}`).toBe(401)
    }
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

  it('refuses a body over the limit on every route that takes one', async () => {
    const big = JSON.stringify({ operation: { type: 'ping' }, targets: 'all', pad: 'x'.repeat(3 * 1024 * 1024) })
    for (const path of ['/v1/jobs', '/v1/plan', '/v1/jobs/j0000000000000/rerun']) {
      const r = await call('POST', path, big)
      expect(r, path).toMatchObject({ status: 400, body: { error: { code: 'invalid_input', field: 'body' } } })
    }
  })

  it('answers unknown jobs and routes with 404, bad queries with 400', async () => {
    expect((await call('GET', '/v1/jobs/jnope0000000000')).status).toBe(404)
    expect((await call('GET', '/v1/jobs/../../etc/passwd')).status).toBe(404)
    expect((await call('POST', '/v1/jobs/jnope0000000000/cancel')).status).toBe(404)
    expect((await call('POST', '/v1/jobs/jnope0000000000/rerun', '{}')).status).toBe(404)
    expect((await call('GET', '/v1/elsewhere')).status).toBe(404)
    expect(await call('GET', '/v1/jobs?state=exploded')).toMatchObject({ status: 400, body: { error: { field: 'query.state' } } })
    expect(await call('GET', '/v1/jobs?limit=-1')).toMatchObject({ status: 400, body: { error: { field: 'query.limit' } } })
  })
})
