import { afterEach, describe, expect, it } from 'vitest'
import { isApiaryError, type JobEvent } from '@apiary/shared'
import { createJobClient, type JobClient } from '@apiary/shared/client'
import { FakeQueen, finishedJob } from '../harness/fake-queen.ts'
import { freePort } from '../harness/index.ts'

const TOKEN = 'test-token-0123456789abcdef'

/**
 * The job client against two queens on real HTTP ports: a stream that survives its queen dying
 * mid-way, repeats and gaps it must not show, writes that find the leader, and the bounded error
 * when no queen is there. The queens are fakes of the HTTP API (test/harness/fake-queen.ts).
 */
describe('job client: failover between queens', () => {
  const open: Array<FakeQueen | JobClient> = []
  afterEach(async () => {
    for (const x of open.splice(0)) await x.close()
  })

  async function queens(jobId: string, nodes = 3) {
    const fixture = finishedJob(jobId, nodes)
    const a = await FakeQueen.start(TOKEN)
    const b = await FakeQueen.start(TOKEN)
    open.push(a, b)
    for (const q of [a, b]) q.job = fixture.job
    return { a, b, ...fixture }
  }
  function client(urls: string[], extra: Partial<Parameters<typeof createJobClient>[0]> = {}) {
    const c = createJobClient({ url: urls, token: TOKEN, ...extra })
    open.push(c)
    return c
  }
  async function collect(stream: AsyncIterable<JobEvent>): Promise<number[]> {
    const seqs: number[] = []
    for await (const ev of stream) seqs.push(ev.seq)
    return seqs
  }
  const streams = (q: FakeQueen) => q.requests.filter((r) => r.path.endsWith('/stream'))

  it('resumes on the other queen with Last-Event-ID when the first dies mid-stream: every event once, in order', async () => {
    const { a, b, events } = await queens('jfail0000000001')
    a.push(...events)
    b.push(...events)
    a.dieAfter = 4
    const reconnects: string[] = []
    const seqs = await collect(client([a.url, b.url]).stream('jfail0000000001', { output: true, onReconnect: (q) => void reconnects.push(q) }))
    expect(seqs).toEqual(events.map((e) => e.seq))
    expect(streams(b).map((r) => r.lastEventId)).toEqual(['4'])
    // First the same queen (it answered last), refused; then the other.
    expect(reconnects).toEqual([a.url, b.url])
  })

  it('drops what a resumed stream repeats', async () => {
    const { a, b, events } = await queens('jfail0000000002')
    a.push(...events)
    b.push(...events)
    a.dieAfter = 6
    b.replayFrom = 2 // b ignores Last-Event-ID and starts over from seq 2
    expect(await collect(client([a.url, b.url]).stream('jfail0000000002', { output: true }))).toEqual(events.map((e) => e.seq))
  })

  it('shows nothing after a gap until the missing events are read again', async () => {
    const { a, b, events } = await queens('jfail0000000003')
    a.push(...events)
    b.push(...events)
    a.dieAfter = 3
    b.skipOnce = 6 // b's first stream leaves out seq 6
    expect(await collect(client([a.url, b.url]).stream('jfail0000000003', { output: true }))).toEqual(events.map((e) => e.seq))
    expect(streams(b).map((r) => r.lastEventId)).toEqual(['3', '5'])
  })

  it('without output, checks the gap a resume leaves against the queen’s stored output, and goes on', async () => {
    const { a, b, events } = await queens('jfail0000000004')
    a.push(...events)
    b.push(...events)
    // seq 3 is n1's output: the stream without output goes 2 → 4, across the failover.
    a.dieAfter = 2
    const want = events.filter((e) => e.kind !== 'node.output').map((e) => e.seq)
    expect(await collect(client([a.url, b.url]).stream('jfail0000000004'))).toEqual(want)
    expect(b.requests.filter((r) => r.path.endsWith('/logs'))).toHaveLength(1)
  })

  it('waits on a standby whose index has not reached the cursor yet, and goes on as events arrive there', async () => {
    const { a, b, events } = await queens('jfail0000000005')
    a.push(...events.slice(0, 5))
    b.push(...events.slice(0, 3))
    a.dieAfter = 5
    const seqs = collect(client([a.url, b.url]).stream('jfail0000000005', { output: true }))
    await b.request(/\/stream$/)
    b.push(...events.slice(3))
    expect(await seqs).toEqual(events.map((e) => e.seq))
    expect(streams(b)).toHaveLength(1)
  })

  it('sends a write a standby refuses (not_leader) to the other queen, and the next write there first', async () => {
    const { a, b } = await queens('jfail0000000006')
    b.leader = true
    const c = client([a.url, b.url])
    expect((await c.submit({ operation: { type: 'ping' }, targets: 'all' })).jobId).toBe('jfail0000000006')
    expect(await c.cancel('jfail0000000006')).toMatchObject({ jobId: 'jfail0000000006' })
    expect(a.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['POST /v1/jobs'])
    expect(b.created).toBe(1)
  })

  it('sends a submit whose queen dropped the connection after reading it to the other queen, under the same Idempotency-Key', async () => {
    const { a, b } = await queens('jfail0000000007')
    a.leader = true
    b.leader = true
    a.dropSubmit = true
    const created = await client([a.url, b.url]).submit({ operation: { type: 'ping' }, targets: 'all' })
    expect(created.jobId).toBe('jfail0000000007')
    const [first, again] = [a.requests.find((r) => r.path === '/v1/jobs'), b.requests.find((r) => r.path === '/v1/jobs')]
    expect(first?.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/)
    expect(again?.idempotencyKey).toBe(first?.idempotencyKey)
    expect(b.created).toBe(1)
  })

  it('looks for a job it just created on the other queens a moment before a 404 is final', async () => {
    const { a, b } = await queens('jfail0000000008')
    a.leader = true
    a.lagFor = 2 // the leader's own read index lags
    b.lagFor = 3
    const c = client([a.url, b.url])
    await c.submit({ operation: { type: 'ping' }, targets: 'all' })
    expect((await c.get('jfail0000000008')).id).toBe('jfail0000000008')
    // A job nobody knows is not waited for.
    const err = await c.get('jnobody00000000').catch((e: unknown) => e)
    expect(isApiaryError(err, 'not_found')).toBe(true)
    expect(String(err)).toContain('job jnobody00000000 does not exist')
  })

  it('gives up on queens that are all down with an error naming each, for a call and for a stream', async () => {
    const dead = [`http://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}`]
    const c = client(dead)
    const err = await c.nodes().catch((e: unknown) => e)
    expect(isApiaryError(err, 'unreachable')).toBe(true)
    expect(String(err)).toContain(`cannot reach any queen: ${dead[0]} (connect ECONNREFUSED`)
    expect(String(err)).toContain(`; ${dead[1]} (connect ECONNREFUSED`)
    const lost = await collect(c.stream('jfail0000000009', { reconnectForMs: 1500 })).catch((e: unknown) => e)
    expect(isApiaryError(lost, 'unreachable')).toBe(true)
    expect(String(lost)).toMatch(/no queen served the event stream of jfail0000000009 within \d+ s: /)
    for (const u of dead) expect(String(lost)).toContain(u)
  })
})
