import { createRequire } from 'node:module'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type Bus, createSigner, generateSigningKey, type JobEvent, type Signer } from '@apiary/shared'
import { silentLogger } from '@apiary/shared/runtime'
import { createJobClient, type JobClient } from '@apiary/shared/client'
import { type Embedded, memoryBuses, startEmbedded } from '@apiary/keeper'
import { type Queen, rebuildIndex, startQueen } from '@apiary/queen'
import { finished, ROOT, type TempDir, tempDir, testSigner, waitUntil } from '../harness/index.ts'

// The queen's own SQLite binding, to read its index as it is on disk.
const Database = createRequire(join(ROOT, 'packages/queen/package.json'))('libsql') as new (file: string, o: { readonly: boolean }) => {
  prepare(sql: string): { all(): unknown[] }
  close(): void
}

const log = silentLogger()
const LEASE = { leaseTtlMs: 1000 }

/** Two queens on one in-process bus (the same code as on NATS, the embedded streams), one hive, three workers. */
async function twoQueens(o: { q2Signer?: Signer } = {}) {
  const dir = await tempDir('queens')
  const cluster = await startEmbedded({
    log,
    buses: memoryBuses(log),
    queen: { stateDir: join(dir.path, 'q1'), tokenFile: join(dir.path, 'token'), queenId: 'q1', signer: testSigner, durable: LEASE, settleMs: 300, sweepMs: 100, cancelGraceMs: 3000 },
    defaults: { heartbeatMs: 200, resultGraceMs: 5000, killGraceMs: 500 },
    hives: [{ region: 'eu' }],
    workers: ['web-1', 'web-2', 'web-3'].map((nodeId) => ({ nodeId, region: 'eu' })),
  })
  const bus = await cluster.buses.open('apiary-queen-2', { role: 'queen', id: 'q2' })
  const q2 = await startQueen({
    bus,
    log,
    queenId: 'q2',
    signer: o.q2Signer ?? testSigner,
    stateDir: join(dir.path, 'q2'),
    tokenFile: join(dir.path, 'token'),
    host: '127.0.0.1',
    port: 0,
    durable: LEASE,
    settleMs: 300,
    sweepMs: 100,
    cancelGraceMs: 3000,
  })
  return { dir, cluster, bus, q2 }
}

async function events(client: JobClient, jobId: string): Promise<JobEvent[]> {
  const out: JobEvent[] = []
  for await (const ev of client.stream(jobId, { output: true })) out.push(ev)
  return out
}

/** Every row of the tables the job log rebuilds, in a stable order. */
function tables(file: string): Record<string, unknown[]> {
  const db = new Database(file, { readonly: false })
  try {
    return {
      jobs: db.prepare('SELECT * FROM jobs ORDER BY id').all(),
      job_nodes: db.prepare('SELECT * FROM job_nodes ORDER BY job_id, node').all(),
      events: db.prepare('SELECT * FROM events ORDER BY job_id, seq').all(),
      meta: db.prepare('SELECT * FROM meta ORDER BY key').all(),
    }
  } finally {
    db.close()
  }
}

describe('two queens, one leader (in-process bus)', () => {
  let env: { dir: TempDir; cluster: Embedded; bus: Bus; q2: Queen } | undefined
  const clients: JobClient[] = []
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close()
    await env?.q2.close()
    await env?.cluster.close()
    await env?.dir.remove()
    env = undefined
  })

  it('one leads and the other serves reads from its own index; when the leader stops, the standby carries the running job to its end', async () => {
    env = await twoQueens()
    const { cluster, q2 } = env
    const c1 = createJobClient({ url: cluster.queen.url, token: cluster.queen.token })
    const c2 = createJobClient({ url: q2.url, token: q2.token })
    clients.push(c1, c2)
    // A write on the standby is refused, and says so.
    const refused = await fetch(`${q2.url}/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${q2.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ operation: { type: 'ping' }, targets: 'all' }) })
    expect(refused.status).toBe(503)
    expect(await refused.json()).toMatchObject({ error: { code: 'not_leader' } })

    const { jobId } = await c1.submit({ operation: { type: 'exec', argv: ['sh', '-c', 'sleep 0.4; echo "$APIARY_NODE_ID"'] }, targets: 'all', rollout: { concurrency: 1 } })
    await waitUntil(async () => (await c1.get(jobId)).nodes.some((n) => n.state === 'ok'), 'a first node to finish')
    // The standby follows the log: it knows the job too.
    await waitUntil(async () => (await c2.get(jobId).catch(() => undefined))?.nodes.some((n) => n.state === 'ok') === true, 'the standby to have the job')
    await cluster.stopQueen()

    await waitUntil(async () => ((await (await fetch(`${q2.url}/readyz`)).json()) as { role: string }).role === 'leader', 'the standby to lead')
    const all = await events(c2, jobId)
    const fin = finished(all)
    expect(fin.counts).toEqual({ ok: 3 })
    expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1))
    // Every node ran once: one line of output each.
    expect(all.filter((e) => e.kind === 'node.output').map((e) => (e as { data: string }).data.trim()).sort()).toEqual(['web-1', 'web-2', 'web-3'])
    expect(all.some((e) => e.kind === 'job.halted')).toBe(false)

    // And it takes new jobs.
    const next = await c2.submit({ operation: { type: 'ping' }, targets: 'all' })
    expect(finished(await events(c2, next.jobId)).counts).toEqual({ ok: 3 })
  })

  it('answers a submit sent again with its Idempotency-Key with the job it made, on the leader and on the next one', async () => {
    env = await twoQueens()
    const { cluster, q2 } = env
    const post = (url: string, token: string, key: string | undefined, body: unknown) =>
      fetch(`${url}/v1/jobs`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) }, body: JSON.stringify(body) })
    const ping = { operation: { type: 'ping' }, targets: 'all' }
    const key = 'key-0123456789abcdef'
    const first = await post(cluster.queen.url, cluster.queen.token, key, ping)
    expect(first.status).toBe(201)
    const made = (await first.json()) as { jobId: string; nodes: string[] }
    // Twice at once and once more: one job.
    const again = await Promise.all([1, 2].map(() => post(cluster.queen.url, cluster.queen.token, key, ping)))
    for (const r of again) expect([r.status, await r.json()]).toEqual([201, made])
    // The same key with another request is refused, naming the header; a bad key too.
    const other = await post(cluster.queen.url, cluster.queen.token, key, { ...ping, targets: 'web-1' })
    expect([other.status, ((await other.json()) as { error: { field: string } }).error.field]).toEqual([409, 'Idempotency-Key'])
    const bad = await post(cluster.queen.url, cluster.queen.token, 'short', ping)
    expect([bad.status, ((await bad.json()) as { error: { field: string } }).error.field]).toEqual([400, 'Idempotency-Key'])
    // The next leader knows the key from the log.
    await waitUntil(async () => (await fetch(`${q2.url}/v1/jobs/${made.jobId}`, { headers: { authorization: `Bearer ${q2.token}` } })).status === 200, 'the standby to have the job')
    await cluster.stopQueen()
    await waitUntil(async () => ((await (await fetch(`${q2.url}/readyz`)).json()) as { role: string }).role === 'leader', 'the standby to lead')
    const afterFailover = await post(q2.url, q2.token, key, ping)
    expect([afterFailover.status, await afterFailover.json()]).toEqual([201, made])
    const c2 = createJobClient({ url: q2.url, token: q2.token })
    clients.push(c2)
    expect((await c2.list()).filter((j) => j.operation.type === 'ping')).toHaveLength(1)
  })

  it('a queen restarted after the leader stopped catches up from the log, and an index rebuilt from the log equals it', async () => {
    env = await twoQueens()
    const { cluster, dir } = env
    const c1 = createJobClient({ url: cluster.queen.url, token: cluster.queen.token })
    clients.push(c1)
    for (const argv of [['true'], ['sh', '-c', 'echo out; echo err >&2; exit 3']]) {
      const { jobId } = await c1.submit({ operation: { type: 'exec', argv }, targets: 'all' })
      await events(c1, jobId)
    }
    await env.q2.close()
    const q2db = join(dir.path, 'q2', 'queen.db')
    const before = tables(q2db)
    expect(before.jobs).toHaveLength(2)
    const done = await rebuildIndex({ bus: env.bus, log, stateDir: join(dir.path, 'q2'), durable: LEASE })
    expect(done.jobs).toBe(2)
    expect(tables(q2db)).toEqual(before)
    // The leader's own index is the same too.
    expect(tables(join(dir.path, 'q1', 'queen.db'))).toEqual(before)
    env.q2 = { close: async () => {} } as Queen
  })

  it('a queen that signs with another key never takes over: hives would refuse its work', async () => {
    env = await twoQueens({ q2Signer: createSigner(generateSigningKey().privatePem) })
    const { cluster, q2, bus } = env
    const c1 = createJobClient({ url: cluster.queen.url, token: cluster.queen.token })
    clients.push(c1)
    const { jobId } = await c1.submit({ operation: { type: 'ping' }, targets: 'all' })
    await events(c1, jobId)
    await cluster.stopQueen()
    // The lease is free (the leader gave it up) and stays free for two of its TTLs.
    const probe = bus.durable.lease('leader', 'probe')
    await waitUntil(async () => (await probe.holder()) === null, 'the lease to be free')
    await new Promise((resolve) => setTimeout(resolve, 2 * LEASE.leaseTtlMs))
    expect(await probe.holder()).toBeNull()
    expect(await (await fetch(`${q2.url}/readyz`)).json()).toMatchObject({ role: 'standby' })
  })
})
