import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isApiaryError, type JobEvent, JobRequest } from '@apiary/shared'
import { openSqliteStore } from './sqlite.ts'
import type { JobStore } from './store.ts'

let dir: string
let store: JobStore
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'apiary-store-'))
  store = openSqliteStore(join(dir, 'queen.db'))
  store.createJob({ id: 'jstore01', request: JobRequest.parse({ operation: { type: 'ping' }, targets: 'all' }), createdAt: 0, nodes: [{ node: 'n1', region: 'eu' }], rerunOf: null })
})
afterEach(() => {
  store.close()
  rmSync(dir, { recursive: true, force: true })
})

const started = (seq: number): JobEvent => ({ jobId: 'jstore01', seq, ts: 0, kind: 'node.started', node: 'n1', human: '' })
const thrown = (fn: () => void): unknown => {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

describe('the SQLite job store', () => {
  it('keeps its database, WAL and shared memory to its owner (0600), even a file made readable before', () => {
    store.commit({ events: [{ event: started(1) }], ends: [] })
    for (const f of ['queen.db', 'queen.db-wal', 'queen.db-shm']) expect((statSync(join(dir, f)).mode & 0o777).toString(8), f).toBe('600')
    store.close()
    chmodSync(join(dir, 'queen.db'), 0o644)
    store = openSqliteStore(join(dir, 'queen.db'))
    expect((statSync(join(dir, 'queen.db')).mode & 0o777).toString(8)).toBe('600')
  })

  it('refuses as invalid_input, naming the event, what it cannot write as JSON, and writes nothing of that batch', () => {
    let deep: unknown = 1
    for (let i = 0; i < 300_000; i++) deep = { a: deep }
    const bad = { ...started(2), result: deep } as JobEvent
    const err = thrown(() => store.commit({ events: [{ event: started(1) }, { event: bad }], ends: [] }))
    expect(isApiaryError(err, 'invalid_input')).toBe(true)
    expect((err as Error).message).toMatch(/^cannot store event 2 \(node\.started\) of job jstore01: /)
    expect(store.eventsAfter('jstore01', 0, 10, { output: true })).toEqual([])
  })

  it('refuses a sequence number it already holds as invalid_input', () => {
    store.commit({ events: [{ event: started(1) }], ends: [] })
    const err = thrown(() => store.commit({ events: [{ event: started(1) }], ends: [] }))
    expect(isApiaryError(err, 'invalid_input')).toBe(true)
  })

  it("keeps a node's typed result", () => {
    const fin: JobEvent = { jobId: 'jstore01', seq: 1, ts: 0, kind: 'node.finished', node: 'n1', state: 'ok', exitCode: null, signal: null, cause: null, durationMs: 1, bytes: 0, truncated: false, digest: null, result: { pong: true }, human: 'n1: ok' }
    store.commit({ events: [{ event: fin, nodeUpdate: { node: 'n1', update: { state: 'ok', result: { pong: true } } } }], ends: [] })
    expect(store.nodes('jstore01')[0]).toMatchObject({ state: 'ok', result: { pong: true } })
  })
})
