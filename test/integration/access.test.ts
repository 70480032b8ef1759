import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AuditRecord, ChainVerifier } from '@apiary/shared'
import { createLogger } from '@apiary/shared/runtime'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { AuditLog, createQueen, hashToken, openApiPath, type QueenCore, ROUTE_ACCESS } from '@apiary/queen'
import { apiChecker, type TempDir, tempDir, testSigner } from '../harness/index.ts'

const TOKENS = { helpdesk: 'helpdesk-token-0123456789abcdef', admin: 'admin-token-0123456789abcdef', op: 'op-token-0123456789abcdef', view: 'view-token-0123456789abcdef', narrow: 'narrow-token-0123456789abcdef' }
type Who = keyof typeof TOKENS | 'nobody'

const USERS = `roles:
  web-eu:
    operations: [exec, ping]
    targets: "role=web,region=eu"
  useradmin: { operations: [], admin: true }
users:
  helpdesk: { token: "${hashToken(TOKENS.helpdesk)}", roles: [useradmin] }
  admin: { token: "${hashToken(TOKENS.admin)}", roles: [admin] }
  op: { token: "${hashToken(TOKENS.op)}", roles: [operator] }
  view: { token: "${hashToken(TOKENS.view)}", roles: [viewer] }
  narrow: { token: "${hashToken(TOKENS.narrow)}", roles: [web-eu, viewer] }
`
const INVENTORY = `defaults: { user: deploy }
groups:
  web-eu: { region: eu, labels: { role: web }, hosts: [web-1, web-2] }
  web-us: { region: us, labels: { role: web }, hosts: [web-9] }
  db: { region: eu, labels: { role: db }, hosts: [db-1] }
`

/**
 * Roles on every route of the queen's API, driven with app.request() over a real users file,
 * inventory and SQLite files: who may do what, what is refused (403, naming the role and rule),
 * and what the audit log keeps of it.
 */
describe('access: users × routes', () => {
  let dir: TempDir
  let queen: QueenCore
  const bus = createMemoryBus(createLogger({ component: 'test', level: 'silent' }))
  const logLines: string[] = []
  const jobs: Record<'ofAdmin' | 'ofOp', string> = { ofAdmin: '', ofOp: '' }
  let failures = 0

  const call = async (who: Who, method: string, path: string, body?: unknown) => {
    if (who === 'nobody' && (path.startsWith('/v1/') || path === '/metrics')) failures++
    const res = await queen.app.request(path, {
      method,
      headers: { ...(who === 'nobody' ? {} : { authorization: `Bearer ${TOKENS[who]}` }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = res.headers.get('content-type')?.startsWith('text/event-stream') ? (await res.body?.cancel(), '') : await res.text()
    const json = text !== '' && res.headers.get('content-type')?.startsWith('application/json')
    return { status: res.status, body: (json ? JSON.parse(text) : {}) as Record<string, any> }
  }
  /** The job's stream read to its end: the job has finished. */
  const finished = async (jobId: string) => {
    const res = await queen.app.request(`/v1/jobs/${jobId}/stream`, { headers: { authorization: `Bearer ${TOKENS.admin}` } })
    const text = await res.text()
    expect(text).toContain('event: job.finished')
  }
  const ping = (targets = 'all') => ({ operation: { type: 'ping' }, targets })

  beforeAll(async () => {
    dir = await tempDir('access')
    await writeFile(join(dir.path, 'users.yaml'), USERS, { mode: 0o600 })
    await writeFile(join(dir.path, 'inventory.yaml'), INVENTORY)
    const log = createLogger({
      component: 'queen',
      level: 'debug',
      destination: new Writable({
        write(chunk, _e, cb) {
          logLines.push(String(chunk))
          cb()
        },
      }),
    })
    queen = await createQueen({
      bus,
      log,
      stateDir: dir.path,
      host: '127.0.0.1',
      port: 0,
      tokenFile: join(dir.path, 'token'),
      signer: testSigner,
      usersFile: join(dir.path, 'users.yaml'),
      inventoryFile: join(dir.path, 'inventory.yaml'),
      usersPollMs: 60_000,
    })
    const a = await call('admin', 'POST', '/v1/jobs', ping())
    const o = await call('op', 'POST', '/v1/jobs', ping())
    expect([a.status, o.status]).toEqual([201, 201])
    jobs.ofAdmin = a.body.jobId
    jobs.ofOp = o.body.jobId
    await finished(jobs.ofAdmin)
    await finished(jobs.ofOp)
  })
  afterAll(async () => {
    await queen?.close()
    await bus.close()
    await dir?.remove()
  })

  type Row = [route: keyof typeof ROUTE_ACCESS, path: () => string, body: unknown, expected: Record<Exclude<Who, 'helpdesk'>, number>]
  const read = { admin: 200, op: 200, view: 200, narrow: 200, nobody: 401 }
  const adminOnly = (ok: number) => ({ admin: ok, op: 403, view: 403, narrow: 403, nobody: 401 })
  const api = apiChecker()
  const TABLE: Row[] = [
    ['GET /healthz', () => '/healthz', undefined, { admin: 200, op: 200, view: 200, narrow: 200, nobody: 200 }],
    ['GET /readyz', () => '/readyz', undefined, { admin: 200, op: 200, view: 200, narrow: 200, nobody: 200 }],
    ['GET /v1/jobs', () => '/v1/jobs', undefined, read],
    ['GET /v1/jobs/:id', () => `/v1/jobs/${jobs.ofAdmin}`, undefined, read],
    ['GET /v1/jobs/:id/logs', () => `/v1/jobs/${jobs.ofAdmin}/logs`, undefined, read],
    ['GET /v1/jobs/:id/stream', () => `/v1/jobs/${jobs.ofAdmin}/stream`, undefined, read],
    ['GET /v1/nodes', () => '/v1/nodes', undefined, read],
    ['POST /v1/plan', () => '/v1/plan', ping(), read],
    // Every node: beyond the narrow role's selector.
    ['POST /v1/jobs', () => '/v1/jobs', ping(), { admin: 201, op: 201, view: 403, narrow: 403, nobody: 401 }],
    ['POST /v1/jobs/:id/rerun', () => `/v1/jobs/${jobs.ofAdmin}/rerun`, {}, { admin: 201, op: 403, view: 403, narrow: 403, nobody: 401 }],
    ['POST /v1/jobs/:id/cancel', () => `/v1/jobs/${jobs.ofAdmin}/cancel`, undefined, { admin: 200, op: 403, view: 403, narrow: 403, nobody: 401 }],
    ['GET /v1/users', () => '/v1/users', undefined, adminOnly(200)],
    ['POST /v1/users', () => '/v1/users', { name: 'temp', roles: ['viewer'] }, adminOnly(201)],
    ['POST /v1/users/:name/rotate', () => '/v1/users/temp/rotate', undefined, adminOnly(200)],
    ['POST /v1/users/:name/revoke', () => '/v1/users/temp/revoke', undefined, adminOnly(200)],
    ['GET /v1/audit', () => '/v1/audit', undefined, adminOnly(200)],
    ['GET /v1/openapi.json', () => '/v1/openapi.json', undefined, read],
    ['GET /metrics', () => '/metrics', undefined, read],
  ]

  // The console's routes: public, the same answer whoever calls; a sign-in checks its token.
  const ORIGIN = 'http://localhost'
  const UI: Array<[route: keyof typeof ROUTE_ACCESS, method: string, path: string, status: number]> = [
    ['GET /ui', 'GET', '/ui', 200],
    ['GET /ui/*', 'GET', '/ui/jobs/', 200],
    ['GET /ui/assets/:name', 'GET', '/ui/assets/missing-0000.js', 404],
    ['GET /ui/session', 'GET', '/ui/session', 401],
    ['DELETE /ui/session', 'DELETE', '/ui/session', 403],
    ['POST /ui/session', 'POST', '/ui/session', 403],
  ]

  it('describes every route the app serves in its OpenAPI document, and the events of a stream match it', async () => {
    const served = queen.app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method.toLowerCase()} ${openApiPath(r.path.replace(/^\/ui\/$/, '/ui'))}`)
    const r = await call('view', 'GET', '/v1/openapi.json')
    expect(r.status).toBe(200)
    const doc = r.body
    expect(doc).toMatchObject({ openapi: '3.1.0', info: { title: 'apiary queen' } })
    const described = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`))
    expect(described.sort()).toEqual([...new Set(served)].sort())
    expect(doc).toEqual(api.doc)
    // Every operation lists its errors in the one error shape.
    for (const ops of Object.values(doc.paths as Record<string, Record<string, { responses: Record<string, any> }>>)) {
      for (const op of Object.values(ops)) expect(op.responses['500'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ErrorBody' })
    }
    const res = await queen.app.request(`/v1/jobs/${jobs.ofAdmin}/stream?output=full`, { headers: { authorization: `Bearer ${TOKENS.view}` } })
    const events = (await res.text()).split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice('data: '.length)))
    expect(events.map((e) => e.kind)).toContain('job.finished')
    for (const e of events) api.checkEvent(e)
    // What does not match is caught.
    expect(() => api.check('GET /v1/jobs', 200, { jobs: [{ id: 'not-a-job' }] })).toThrow(/does not match/)
    expect(() => api.check('GET /v1/jobs', 418, {})).toThrow(/does not list/)
  })

  it('has a row for every route the app serves, so none can skip authorisation', () => {
    const served = new Set(queen.app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path.replace(/^\/ui\/$/, '/ui')}`))
    expect([...served].sort()).toEqual([...TABLE.map((r) => r[0]), ...UI.map((r) => r[0])].sort())
    expect(Object.keys(ROUTE_ACCESS).sort()).toEqual([...served].sort())
  })

  it.each(UI)('%s is public: the same answer whoever calls (a change without the queen’s Origin refused)', async (_route, method, path, status) => {
    for (const who of ['nobody', 'view', 'admin'] as const) {
      const res = await queen.app.request(path, { method, headers: who === 'nobody' ? {} : { authorization: `Bearer ${TOKENS[who]}` } })
      const type = res.headers.get('content-type') ?? ''
      const body = type.startsWith('application/json') ? await res.json() : await res.body?.cancel()
      expect(res.status, `${who} ${method} ${path}`).toBe(status)
      api.check(_route, res.status, body)
    }
  })

  // Admin last in each row: its writes (a user added, then rotated, then revoked) come after the refusals.
  it.each(TABLE)('%s', async (route, path, body, expected) => {
    const method = route.split(' ')[0]!
    for (const who of ['nobody', 'view', 'narrow', 'op', 'admin'] as const) {
      const r = await call(who, method, path(), body)
      expect(r.status, `${who} ${route}: ${JSON.stringify(r.body)}`).toBe(expected[who])
      api.check(route, r.status, r.body)
      if (r.status === 403) expect(r.body.error).toMatchObject({ code: 'forbidden', message: expect.stringMatching(/^roles? /) })
    }
  })

  it('lets a selector-limited role submit inside its selector and refuses nodes outside it, by name', async () => {
    expect((await call('narrow', 'POST', '/v1/jobs', ping('role=web,region=eu'))).status).toBe(201)
    const out = await call('narrow', 'POST', '/v1/jobs', ping('role=web'))
    expect(out).toMatchObject({ status: 403, body: { error: { code: 'forbidden', message: expect.stringContaining('role web-eu does not allow node web-9 (outside its targets role=web,region=eu)') } } })
    expect(out.body.error.message).toContain('role viewer is read only')
    const facts = await call('narrow', 'POST', '/v1/jobs', { operation: { type: 'facts' }, targets: 'role=web,region=eu' })
    expect(facts.body.error.message).toContain('role web-eu does not allow facts (only exec, ping)')
  })

  it('refuses a destructive operation to an operator, naming the rule, even confirmed; an admin may run it', async () => {
    const wipe = { operation: { type: 'exec', argv: ['rm', '-rf', '/'] }, targets: 'db-1', confirm: { nodes: 1 } }
    expect(await call('op', 'POST', '/v1/jobs', wipe)).toMatchObject({ status: 403, body: { error: { message: 'role operator does not allow destructive operations' } } })
    // Without its confirmation even an admin is refused, and the refusal is recorded.
    const { confirm: _c, ...unconfirmed } = wipe
    expect(await call('admin', 'POST', '/v1/jobs', unconfirmed)).toMatchObject({ status: 428, body: { error: { code: 'confirmation_required', details: { nodes: 1 } } } })
    const audit = (await call('admin', 'GET', '/v1/audit?limit=1000')).body.records as AuditRecord[]
    expect(audit.filter((r) => r.kind === 'refused' && r.user === 'admin').at(-1)?.detail).toMatchObject({ action: 'submit', risk: 'destructive', confirm: null, reason: expect.stringContaining('confirm') })
    expect((await call('admin', 'POST', '/v1/jobs', wipe)).status).toBe(201)
  })

  it('says in a plan whether the caller may submit it', async () => {
    const wipe = { operation: { type: 'exec', argv: ['rm', '-rf', '/'] }, targets: 'db-1' }
    expect((await call('op', 'POST', '/v1/plan', wipe)).body.access).toEqual({ allowed: false, reason: 'role operator does not allow destructive operations' })
    expect((await call('admin', 'POST', '/v1/plan', wipe)).body.access).toEqual({ allowed: true, role: 'admin' })
    expect((await call('view', 'POST', '/v1/plan', ping())).body).toMatchObject({ nodes: 4, access: { allowed: false, reason: 'role viewer is read only' } })
  })

  it('lets a user cancel their own job and records who submitted each job', async () => {
    expect((await call('op', 'POST', `/v1/jobs/${jobs.ofOp}/cancel`)).status).toBe(200)
    expect((await call('view', 'GET', `/v1/jobs/${jobs.ofOp}`)).body.submittedBy).toBe('op')
    const list = (await call('view', 'GET', '/v1/jobs')).body.jobs as Array<{ id: string; submittedBy: string }>
    expect(list.find((j) => j.id === jobs.ofAdmin)?.submittedBy).toBe('admin')
  })

  it('audits submissions without secrets, and refusals with their rule', async () => {
    const secret = { operation: { type: 'exec', argv: ['deploy'], env: { API_KEY: 'hunter2-env-value' }, stdin: 'stdin-secret-value' }, targets: 'web-1' }
    const created = await call('op', 'POST', '/v1/jobs', secret)
    expect(created.status).toBe(201)
    const page = await call('admin', 'GET', '/v1/audit?limit=1000')
    const records = page.body.records as AuditRecord[]
    const submitted = records.find((r) => r.kind === 'job.submitted' && r.detail.jobId === created.body.jobId)!
    expect(submitted).toMatchObject({ user: 'op', source: 'unknown', queen: 'queen', detail: { nodes: 1, risk: 'safe', confirm: null, targets: 'web-1' } })
    expect(submitted.detail.operation).toEqual({ type: 'exec', shell: false, argv: ['deploy'], env: { API_KEY: '[redacted]' }, stdinBytes: 18 })
    expect(submitted.detail.targetsDigest).toMatch(/^[0-9a-f]{64}$/)
    const refusal = records.find((r) => r.kind === 'refused' && r.user === 'op' && r.detail.action === 'submit')!
    expect(refusal.detail).toMatchObject({ reason: 'role operator does not allow destructive operations', route: 'POST /v1/jobs', risk: 'destructive' })
    expect(records.filter((r) => r.kind === 'login').map((r) => r.user).sort()).toEqual(['admin', 'narrow', 'op', 'view'])
    expect(records.map((r) => r.kind)).toEqual(expect.arrayContaining(['job.cancelled', 'job.rerun', 'user.added', 'user.rotated', 'user.revoked']))
    const v = new ChainVerifier()
    expect(records.every((r) => v.push(r))).toBe(true)
    expect(page.body.head).toEqual(v.verdict().head)
    // Bounded pages, bad queries named.
    expect(await call('admin', 'GET', '/v1/audit?limit=100000')).toMatchObject({ status: 400, body: { error: { field: 'query.limit' } } })
    expect(await call('admin', 'GET', '/v1/audit?user=NOT%20A%20NAME')).toMatchObject({ status: 400, body: { error: { field: 'query.user' } } })
    expect((await call('admin', 'GET', '/v1/audit?user=op&limit=1000')).body.records.every((r: AuditRecord) => r.user === 'op')).toBe(true)
  })

  it('lets an admin role grant, rotate and revoke only roles whose every power it holds', async () => {
    const viewerAdded = await call('helpdesk', 'POST', '/v1/users', { name: 'reader', roles: ['viewer'] })
    expect(viewerAdded.status).toBe(201)
    const escalate = await call('helpdesk', 'POST', '/v1/users', { name: 'helpdesk2', roles: ['admin'] })
    expect(escalate).toMatchObject({ status: 403, body: { error: { code: 'forbidden', message: 'role useradmin does not hold every power of role admin, so may not grant it, nor rotate or revoke a user who holds it' } } })
    expect((await call('helpdesk', 'POST', '/v1/users', { name: 'op2', roles: ['operator'] })).status).toBe(403)
    expect((await call('helpdesk', 'POST', '/v1/users/admin/rotate')).status).toBe(403)
    expect((await call('helpdesk', 'POST', '/v1/users/op/revoke')).status).toBe(403)
    expect((await call('helpdesk', 'POST', '/v1/users/reader/rotate')).status).toBe(200)
    expect((await call('helpdesk', 'POST', '/v1/users/reader/revoke')).status).toBe(200)
    // The full admin holds every power.
    expect((await call('admin', 'POST', '/v1/users', { name: 'admin2', roles: ['admin'] })).status).toBe(201)
    expect((await call('admin', 'POST', '/v1/users/admin2/revoke')).status).toBe(200)
  })

  it('refuses bad user changes naming the field, and never the last admin', async () => {
    expect(await call('admin', 'POST', '/v1/users', { name: 'x', roles: ['nosuch'] })).toMatchObject({ status: 400, body: { error: { field: 'roles' } } })
    expect(await call('admin', 'POST', '/v1/users', { name: 'Bad Name', roles: ['viewer'] })).toMatchObject({ status: 400, body: { error: { field: 'name' } } })
    expect(await call('admin', 'POST', '/v1/users', { name: 'op', roles: ['viewer'] })).toMatchObject({ status: 409 })
    expect((await call('admin', 'POST', '/v1/users/helpdesk/revoke')).status).toBe(200)
    expect(await call('admin', 'POST', '/v1/users/admin/revoke')).toMatchObject({ status: 409, body: { error: { message: expect.stringContaining('last user with an admin role') } } })
    expect((await call('admin', 'POST', '/v1/users/nobody/rotate')).status).toBe(404)
    const big = await call('admin', 'POST', '/v1/users', { name: 'y', roles: ['viewer'], pad: 'x'.repeat(20_000) })
    expect(big).toMatchObject({ status: 400, body: { error: { field: 'body' } } })
  })

  it('folds failed authentications per address, and no token or hash reaches an audit record or a log line', async () => {
    for (let i = 0; i < 50; i++) expect((await call('nobody', 'GET', '/v1/jobs')).status).toBe(401)
    const wrong = 'wrong-token-value-never-logged'
    const res = await queen.app.request('/v1/jobs', { headers: { authorization: `Bearer ${wrong}` } })
    expect(res.status).toBe(401)
    failures++
    // The console's sign-in: a wrong token is a failed authentication like any other.
    const signIn = (token: string) =>
      queen.app.request(`${ORIGIN}/ui/session`, { method: 'POST', headers: { origin: ORIGIN, 'content-type': 'application/json' }, body: JSON.stringify({ token }) })
    expect((await signIn(wrong)).status).toBe(401)
    failures++
    const signedIn = await signIn(TOKENS.view)
    expect(signedIn.status).toBe(200)
    expect(signedIn.headers.get('set-cookie')).toMatch(/HttpOnly/i)
    await queen.close()
    const audit = AuditLog.open(join(dir.path, 'audit.db'), { queenId: 'read' })
    const records = [...audit.all()]
    audit.close()
    const failed = records.filter((r) => r.kind === 'auth.failed')
    expect(failed).toEqual([expect.objectContaining({ source: 'unknown', detail: expect.objectContaining({ count: failures, reasons: ['no bearer token', 'unknown token', 'console sign-in with an unknown token'] }) })])
    const everything = JSON.stringify(records) + logLines.join('')
    for (const t of [...Object.values(TOKENS), wrong]) {
      expect(everything).not.toContain(t)
      expect(everything).not.toContain(hashToken(t).slice('sha256:'.length))
    }
    expect(everything).not.toContain('hunter2-env-value')
    expect(everything).not.toContain('stdin-secret-value')
    expect(logLines.join('')).toContain('"msg":"audit head"')
  })
})
