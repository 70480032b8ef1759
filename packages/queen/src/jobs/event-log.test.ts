import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { ApiaryError, type JobEvent, JobRequestView, type WireEvent } from '@apiary/shared'
import { createLogger, silentLogger } from '@apiary/shared/runtime'
import { openSqliteStore } from '../store/sqlite.ts'
import type { Batch, JobStore } from '../store/store.ts'
import { EventLog, merge, RECORD_BYTES, split } from './event-log.ts'

const ev = (jobId: string, node: string): WireEvent => ({ jobId, ts: 0, kind: 'node.started', node, human: '' })
const tick = () => new Promise<void>((resolve) => setImmediate(resolve))

/** A logger whose lines the test reads (pino writes to a plain Writable synchronously). */
function recordingLogger() {
  const lines: Array<Record<string, unknown>> = []
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
      done()
    },
  })
  return { log: createLogger({ component: 'test', destination }), lines }
}

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** A real job store in a fresh SQLite file, with jobs `ids` of one node `n1` each. */
function sqliteStore(...ids: string[]): JobStore {
  const dir = mkdtempSync(join(tmpdir(), 'apiary-event-log-'))
  dirs.push(dir)
  const store = openSqliteStore(join(dir, 'queen.db'))
  const request = JobRequestView.parse({ operation: { type: 'ping' }, targets: 'all' })
  for (const id of ids) store.createJob({ id, request, createdAt: 0, nodes: [{ node: 'n1', region: 'eu' }], rerunOf: null })
  return store
}

/** A node.finished whose result no JSON.stringify can write: nested 300,000 deep (it got past a schema that took any value). */
function unstorable(jobId: string): WireEvent {
  let deep: unknown = 1
  for (let i = 0; i < 300_000; i++) deep = { a: deep }
  return {
    jobId,
    ts: 0,
    kind: 'node.finished',
    node: 'n1',
    state: 'ok',
    exitCode: null,
    signal: null,
    cause: null,
    durationMs: 1,
    bytes: 0,
    truncated: false,
    digest: null,
    result: deep as { pong: true },
    human: 'n1: ok',
  }
}

describe('EventLog', () => {
  it('numbers each job gaplessly, from where it left off', () => {
    const log = new EventLog({ commit: () => true }, silentLogger())
    log.open('a', 0)
    log.open('b', 41)
    expect([log.append(ev('a', 'x'))?.seq, log.append(ev('b', 'x'))?.seq, log.append(ev('a', 'y'))?.seq]).toEqual([1, 42, 2])
    void log.close()
  })

  it('commits what one tick appended in one batch, and tells listeners only after it is stored', async () => {
    const batches: Batch[] = []
    const heard: JobEvent[] = []
    const log = new EventLog({ commit: (b) => batches.push(b) > 0 }, silentLogger())
    log.open('a', 0)
    log.listen('a', (e) => {
      // Stored before heard.
      expect(batches.flatMap((b) => b.events.map((x) => x.event.seq))).toContain(e.seq)
      heard.push(e)
    })
    for (let i = 0; i < 5; i++) log.append(ev('a', `n${i}`))
    log.end({ jobId: 'a', state: 'ok', finishedAt: 1, counts: {}, stopReason: null })
    expect(heard).toEqual([])
    await tick()
    expect(batches).toHaveLength(1)
    expect(batches[0]!.events).toHaveLength(5)
    expect(batches[0]!.ends).toHaveLength(1)
    expect(heard.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5])
    void log.close()
  })

  it('writes a lone event at once, holds what comes within groupMs of that group for the next one, and writes it at once on close', async () => {
    const batches: number[][] = []
    const log = new EventLog({ commit: (b) => batches.push(b.events.map((x) => x.event.seq)) > 0 }, silentLogger(), { groupMs: 3_600_000 })
    log.open('a', 0)
    log.append(ev('a', 'n0'))
    await tick()
    expect(batches).toEqual([[1]])
    // Appended over several ticks after it: none is written while the gap lasts.
    for (let i = 1; i <= 3; i++) {
      log.append(ev('a', `n${i}`))
      await tick()
    }
    expect(batches).toEqual([[1]])
    await log.close()
    expect(batches).toEqual([[1], [2, 3, 4]])
  })

  it('keeps a batch the store refused, in order, and retries it: nothing dropped, nothing heard early', async () => {
    let fail = true
    const stored: number[] = []
    const heard: number[] = []
    let retried!: () => void
    const again = new Promise<void>((resolve) => (retried = resolve))
    const log = new EventLog(
      {
        commit: (b) => {
          if (fail) {
            fail = false
            throw new Error('disk full')
          }
          stored.push(...b.events.map((x) => x.event.seq))
          retried()
          return true
        },
      },
      silentLogger(),
      // The group after the retry follows it at once: this is about the retry, not the grouping.
      { retryMs: 10, groupMs: 0 },
    )
    log.open('a', 0)
    log.listen('a', (e) => heard.push(e.seq))
    log.append(ev('a', 'x'))
    log.append(ev('a', 'y'))
    await tick()
    expect(heard).toEqual([])
    log.append(ev('a', 'z'))
    await again
    expect(stored).toEqual([1, 2, 3])
    expect(heard).toEqual([1, 2, 3])
    void log.close()
  })

  it('stores the other events of a batch with one that cannot be stored: that one alone is dropped, and logged with its job and kind', async () => {
    const store = sqliteStore('jbad0001', 'jgood001')
    const { log: logger, lines } = recordingLogger()
    const heard: string[] = []
    const log = new EventLog(store, logger, { retryMs: 10 })
    log.open('jbad0001', 0)
    log.open('jgood001', 0)
    for (const id of ['jbad0001', 'jgood001']) log.listen(id, (e) => heard.push(`${e.jobId}/${e.seq}/${e.kind}`))
    log.append(ev('jgood001', 'n1'))
    log.append(ev('jbad0001', 'n1'))
    log.append(unstorable('jbad0001'), { node: 'n1', update: { state: 'ok' } })
    log.append({ jobId: 'jgood001', ts: 0, kind: 'node.output', node: 'n1', stream: 'stdout', data: 'hi\n', human: 'n1 | hi' })
    log.end({ jobId: 'jgood001', state: 'ok', finishedAt: 1, counts: { ok: 1 }, stopReason: null })
    await tick()
    expect(store.eventsAfter('jgood001', 0, 10, { output: true }).map((e) => e.kind)).toEqual(['node.started', 'node.output'])
    expect(store.getJob('jgood001')).toMatchObject({ state: 'ok', lastSeq: 2 })
    expect(store.eventsAfter('jbad0001', 0, 10, { output: true }).map((e) => e.kind)).toEqual(['node.started'])
    expect(store.nodes('jbad0001')[0]?.state).toBe('pending')
    expect(heard).toEqual(['jgood001/1/node.started', 'jbad0001/1/node.started', 'jgood001/2/node.output'])
    expect(lines.filter((l) => l.msg === 'dropped an event the store refuses').map((l) => [l.jobId, l.kind, l.seq])).toEqual([['jbad0001', 'node.finished', 2]])
    expect(lines.some((l) => l.msg === 'cannot store events; retrying')).toBe(false)

    // And the job goes on: its next event is stored.
    log.append(ev('jbad0001', 'n1'))
    await tick()
    expect(store.eventsAfter('jbad0001', 0, 10, { output: true }).map((e) => e.seq)).toEqual([1, 3])
    void log.close()
    store.close()
  })

  it('drops an event whose sequence number the store already holds, and stores the rest', async () => {
    const store = sqliteStore('jdup0001', 'jother01')
    store.commit({ events: [{ event: { ...ev('jdup0001', 'n1'), seq: 1 } as JobEvent }], ends: [] })
    const { log: logger, lines } = recordingLogger()
    const log = new EventLog(store, logger, { retryMs: 10 })
    // Opened as if nothing were stored: its first event reuses seq 1.
    log.open('jdup0001', 0)
    log.open('jother01', 0)
    log.append(ev('jdup0001', 'n1'))
    log.append(ev('jother01', 'n1'))
    log.append(ev('jdup0001', 'n1'))
    await tick()
    expect(store.eventsAfter('jother01', 0, 10, { output: true }).map((e) => e.seq)).toEqual([1])
    expect(store.eventsAfter('jdup0001', 0, 10, { output: true }).map((e) => e.seq)).toEqual([1, 2])
    expect(lines.filter((l) => l.msg === 'dropped an event the store refuses').map((l) => [l.jobId, l.seq])).toEqual([['jdup0001', 1]])
    void log.close()
    store.close()
  })

  it('keeps everything for a store that cannot write, even while isolating a bad event, and stores it once the store is back', async () => {
    const real = sqliteStore('jbad0002', 'jgood002')
    // The disk fills up just as the log starts committing one event at a time.
    let full = false
    let fillsUp = true
    const store: Pick<JobStore, 'commit'> = {
      commit(b) {
        if (fillsUp && b.events.length + b.ends.length === 1) [fillsUp, full] = [false, true]
        if (full) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })
        return real.commit(b)
      },
    }
    const { log: logger, lines } = recordingLogger()
    const log = new EventLog(store, logger, { retryMs: 10 })
    log.open('jbad0002', 0)
    log.open('jgood002', 0)
    let stored!: () => void
    const both = new Promise<void>((resolve) => (stored = resolve))
    log.listen('jgood002', (e) => e.seq === 2 && stored())
    log.append(ev('jgood002', 'n1'))
    log.append(unstorable('jbad0002'))
    log.append(ev('jgood002', 'n1'))
    await tick()
    expect(real.eventsAfter('jgood002', 0, 10, { output: true })).toEqual([])
    expect(lines.filter((l) => l.msg === 'cannot store events; retrying').map((l) => l.events)).toEqual([3])
    expect(lines.some((l) => l.msg === 'dropped an event the store refuses')).toBe(false)
    full = false
    await both
    expect(real.eventsAfter('jgood002', 0, 10, { output: true }).map((e) => e.seq)).toEqual([1, 2])
    expect(lines.filter((l) => l.msg === 'dropped an event the store refuses').map((l) => l.jobId)).toEqual(['jbad0002'])
    void log.close()
    real.close()
  })

  it('drops an event of a job that is not open, so one stray event cannot block the commits', async () => {
    const stored: string[] = []
    const log = new EventLog({ commit: (b) => stored.push(...b.events.map((x) => `${x.event.jobId}/${x.event.seq}`)) >= 0 }, silentLogger())
    log.open('a', 0)
    log.append(ev('a', 'x'))
    log.end({ jobId: 'a', state: 'ok', finishedAt: 1, counts: {}, stopReason: null })
    expect(log.append(ev('a', 'late'))).toBeUndefined()
    expect(log.append(ev('never-opened', 'x'))).toBeUndefined()
    log.open('b', 0)
    log.append(ev('b', 'x'))
    await tick()
    expect(stored).toEqual(['a/1', 'b/1'])
    void log.close()
  })

  it('stops telling a listener that left', async () => {
    const heard: number[] = []
    const log = new EventLog({ commit: () => true }, silentLogger())
    log.open('a', 0)
    const off = log.listen('a', (e) => heard.push(e.seq))
    log.append(ev('a', 'x'))
    await tick()
    off()
    log.append(ev('a', 'y'))
    await tick()
    expect(heard).toEqual([1])
    void log.close()
  })

  describe('with the job log', () => {
    /** A log writer the test steers: what it took, and how its next writes end. */
    function fakeWriter() {
      const written: Batch[] = []
      const plan: Array<'ok' | 'fail' | 'conflict'> = []
      let seq = 0
      return {
        written,
        plan,
        async write(b: Batch) {
          const how = plan.shift() ?? 'ok'
          if (how === 'fail') throw new ApiaryError('timeout', 'the log did not answer')
          if (how === 'conflict') throw new ApiaryError('conflict', 'wrong last sequence')
          written.push(structuredClone(b))
          return ++seq
        },
      }
    }

    it('writes the log, then the index at the log position, then tells listeners, then acknowledges the stream', async () => {
      const store = sqliteStore('jlog0001')
      const order: string[] = []
      const writer = fakeWriter()
      const log = new EventLog(
        { commit: (b, seq) => (order.push(`index@${seq}`), store.commit(b, seq)) },
        silentLogger(),
        { writer: { write: (b) => (order.push('log'), writer.write(b)) }, runs: () => [{ jobId: 'jlog0001', run: { v: 1 } }] },
      )
      log.open('jlog0001', 0)
      log.listen('jlog0001', () => order.push('heard'))
      log.append(ev('jlog0001', 'n1'))
      log.source(7, () => order.push('ack 7'))
      await log.stored()
      expect(order).toEqual(['log', 'index@1', 'heard', 'ack 7'])
      expect(writer.written[0]).toMatchObject({ src: 7, runs: [{ jobId: 'jlog0001', run: { v: 1 } }] })
      expect(store.position()).toEqual({ logSeq: 1, eventsSeq: 7 })
      await log.close()
      store.close()
    })

    it('acknowledges a message that emitted nothing but changed a run (an event held) only once a record holds that run', async () => {
      const store = sqliteStore('jlog0002')
      const order: string[] = []
      const writer = fakeWriter()
      let dirty: NonNullable<Batch['runs']> = [{ jobId: 'jlog0002', run: { v: 1, order: { held: 1 } } }]
      const log = new EventLog(store, silentLogger(), {
        writer: { write: (b) => (order.push('log'), writer.write(b)) },
        runs: () => dirty.splice(0),
      })
      log.open('jlog0002', 0)
      log.source(3, () => order.push('ack 3'))
      await log.stored()
      expect(order).toEqual(['log', 'ack 3'])
      expect(writer.written[0]).toMatchObject({ events: [], src: 3, runs: [{ jobId: 'jlog0002', run: { v: 1, order: { held: 1 } } }] })
      expect(store.position()).toEqual({ logSeq: 1, eventsSeq: 3 })
      // Nothing changed: acknowledged without a record.
      dirty = []
      log.source(4, () => order.push('ack 4'))
      await log.stored()
      expect(order).toEqual(['log', 'ack 3', 'ack 4'])
      expect(writer.written).toHaveLength(1)
      await log.close()
      store.close()
    })

    it('tries a group again when the log cannot take it, and writes no record twice when only the index failed', async () => {
      const writer = fakeWriter()
      writer.plan.push('fail')
      let indexFails = 0
      const committed: number[] = []
      const log = new EventLog(
        {
          commit: (b, seq) => {
            if (seq === 1 && indexFails++ === 0) throw new Error('disk full')
            committed.push(seq ?? -1)
            return true
          },
        },
        silentLogger(),
        { writer, retryMs: 5 },
      )
      log.open('a', 0)
      log.append(ev('a', 'x'))
      await log.stored()
      expect(writer.written).toHaveLength(1)
      expect(committed).toEqual([1])
      await log.close()
    })

    it('stops when another queen wrote the log: what waits is refused with not_leader and nothing is acknowledged', async () => {
      const writer = fakeWriter()
      writer.plan.push('conflict')
      let fenced = 0
      const acks: number[] = []
      const log = new EventLog({ commit: () => true }, silentLogger(), { writer, onFenced: () => fenced++ })
      log.open('a', 0)
      log.append(ev('a', 'x'))
      log.source(3, () => acks.push(3))
      await expect(log.stored()).rejects.toMatchObject({ code: 'not_leader' })
      expect([fenced, acks, writer.written.length]).toEqual([1, [], 0])
      log.append(ev('a', 'y'))
      await expect(log.stored()).rejects.toMatchObject({ code: 'not_leader' })
      // A new term starts clean.
      log.reset()
      log.open('a', 1)
      log.append(ev('a', 'z'))
      await log.stored()
      expect(writer.written.map((b) => b.events.map((e) => e.event.seq))).toEqual([[2]])
      await log.close()
    })

    it('writes a large group as several records, then commits it to the index once, whole', async () => {
      const writer = fakeWriter()
      const commits: Array<{ events: number; seq: number | undefined }> = []
      const log = new EventLog({ commit: (b, seq) => commits.push({ events: b.events.length, seq }) > 0 }, silentLogger(), { writer })
      log.open('a', 0)
      for (let i = 0; i < 12; i++) log.append({ jobId: 'a', ts: 0, kind: 'node.output', node: 'n1', stream: 'stdout', data: 'x'.repeat(200_000), human: '' })
      await log.stored()
      expect(writer.written.length).toBeGreaterThan(1)
      expect(commits).toEqual([{ events: 12, seq: writer.written.length }])
      await log.close()
    })

    it('writes the runs a sweep changed when touched, with no event and no stream message to carry them', async () => {
      const store = sqliteStore('jlog0003')
      const writer = fakeWriter()
      let dirty: NonNullable<Batch['runs']> = [{ jobId: 'jlog0003', run: { v: 1, graces: [{ at: 5, nodes: ['n1'] }] } }]
      const log = new EventLog(store, silentLogger(), { writer, runs: () => dirty.splice(0) })
      log.open('jlog0003', 0)
      // Untouched, a dirty run waits for the next group.
      await log.stored()
      expect(writer.written).toHaveLength(0)
      log.touch()
      await log.stored()
      expect(writer.written).toEqual([expect.objectContaining({ events: [], runs: [{ jobId: 'jlog0003', run: { v: 1, graces: [{ at: 5, nodes: ['n1'] }] } }] })])
      expect(store.position().logSeq).toBe(1)
      // Touched with nothing dirty: no record.
      dirty = []
      log.touch()
      await log.stored()
      expect(writer.written).toHaveLength(1)
      await log.close()
      store.close()
    })

    it('acknowledges a stream message that changed nothing without writing a record', async () => {
      const writer = fakeWriter()
      const acks: number[] = []
      const log = new EventLog({ commit: () => true }, silentLogger(), { writer })
      log.source(9, () => acks.push(9))
      await log.stored()
      await tick()
      expect([acks, writer.written.length]).toEqual([[9], 0])
      await log.close()
    })
  })

  it('splits a job of 100,000 nodes over records under RECORD_BYTES, and merges them back whole, secrets in the first only', () => {
    const nodes = Array.from({ length: 100_000 }, (_, i) => ({ node: `node-${String(i).padStart(6, '0')}`, region: `region-${i % 7}` }))
    const job = { id: 'big', request: JobRequestView.parse({ operation: { type: 'ping' }, targets: 'all' }), createdAt: 0, nodes, rerunOf: null, sealed: 's'.repeat(1000) }
    const small = { id: 'small', request: job.request, createdAt: 0, nodes: nodes.slice(0, 3), rerunOf: null }
    const records = split({ jobs: [job, small], events: [], ends: [], src: 9 })
    expect(records.length).toBeGreaterThan(2)
    for (const r of records) expect(JSON.stringify(r).length).toBeLessThanOrEqual(RECORD_BYTES)
    expect(records.flatMap((r) => r.jobs ?? []).filter((j) => j.sealed !== undefined)).toHaveLength(1)
    const whole = merge(records)
    expect(whole.jobs).toEqual([job, small])
    expect(whole.src).toBe(9)
  })

  it('splits a large group into records under RECORD_BYTES, jobs in the first, runs and source in the last', () => {
    const big = 'x'.repeat(200_000)
    const events = Array.from({ length: 12 }, (_, i) => ({ event: { jobId: 'a', seq: i + 1, ts: 0, kind: 'node.output', node: 'n1', stream: 'stdout', data: big, human: '' } as JobEvent }))
    const records = split({ jobs: [{ id: 'a', request: JobRequestView.parse({ operation: { type: 'ping' }, targets: 'all' }), createdAt: 0, nodes: [], rerunOf: null }], events, ends: [], runs: [], src: 4 })
    expect(records.length).toBeGreaterThan(1)
    for (const r of records) expect(JSON.stringify(r).length).toBeLessThanOrEqual(RECORD_BYTES)
    expect(records.flatMap((r) => r.events.map((e) => e.event.seq))).toEqual(events.map((e) => e.event.seq))
    expect(records[0]!.jobs).toHaveLength(1)
    expect(records.at(-1)).toMatchObject({ src: 4, runs: [] })
    expect(records.slice(0, -1).every((r) => r.src === undefined)).toBe(true)
    expect(records.map((r) => r.part)).toEqual(records.map((_, i) => ({ n: i + 1, of: records.length })))
  })

  it('weighs the runs and ends too: a group of events near a record, with the snapshots of large running jobs, stays under RECORD_BYTES a record and merges back whole', () => {
    const events = Array.from({ length: 1800 }, (_, i) => ({ event: { jobId: 'a', seq: i + 1, ts: 0, kind: 'node.finished', node: `node-${i}`, state: 'ok', exitCode: 0, human: 'ok' } as unknown as JobEvent }))
    // As a job of 50,000 nodes, 5,000 of them running, says where each one's events stand.
    const snapshot = (id: string) => ({ jobId: id, run: { v: 1, order: { next: Array.from({ length: 5000 }, (_, i) => [`${id}-node-${String(i).padStart(5, '0')}`, 2]), held: [] } } })
    const runs = [snapshot('a'), snapshot('b'), snapshot('c')]
    const ends = Array.from({ length: 50 }, (_, i) => ({ jobId: `done-${i}`, state: 'ok' as const, finishedAt: 0, counts: { ok: 50_000 }, stopReason: null }))
    const records = split({ jobs: [], events, ends: [...ends], runs, src: 7 })
    expect(records.length).toBeGreaterThan(1)
    for (const r of records) expect(JSON.stringify(r).length).toBeLessThanOrEqual(RECORD_BYTES)
    expect(records.at(-1)!.src).toBe(7)
    const whole = merge(records)
    expect(whole.events).toEqual(events)
    expect(whole.ends).toEqual(ends)
    expect(whole.runs).toEqual(runs)
  })

  it('keeps runs: [] on the last record of a group that has runs but none touched', () => {
    const records = split({ jobs: [], events: [], ends: [], runs: [], src: 3 })
    expect(records).toEqual([{ jobs: [], events: [], ends: [], runs: [], src: 3 }])
  })
})
