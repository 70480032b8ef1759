import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type JobEvent, JobRequestView, type StreamMessage } from '@apiary/shared'
import { silentLogger } from '@apiary/shared/runtime'
import { openSqliteStore } from '../store/sqlite.ts'
import type { Batch, JobStore } from '../store/store.ts'
import { RecordApplier } from './leader.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function store(): JobStore {
  const dir = mkdtempSync(join(tmpdir(), 'apiary-applier-'))
  dirs.push(dir)
  const s = openSqliteStore(join(dir, 'queen.db'))
  s.createJob({ id: 'japply01', request: JobRequestView.parse({ operation: { type: 'ping' }, targets: 'all' }), createdAt: 0, nodes: [{ node: 'n1', region: 'eu' }], rerunOf: null })
  return s
}

const out = (seq: number): Batch['events'][number] => ({ event: { jobId: 'japply01', seq, ts: 0, kind: 'node.output', node: 'n1', stream: 'stdout', data: `${seq}\n`, human: '' } as JobEvent })
const msg = (seq: number, record: Batch): StreamMessage => ({ subject: 'apiary.log', data: { v: 1, by: 'q', key: 'k', ...record }, seq, deliveries: 1, ack: () => {} })

describe('RecordApplier', () => {
  it('applies a group of several parts only once every part is read, at the last part’s position', () => {
    const s = store()
    const a = new RecordApplier(s, silentLogger())
    expect(a.apply(msg(1, { events: [out(1)], ends: [], part: { n: 1, of: 2 } }))).toEqual([])
    expect(s.position().logSeq).toBe(0)
    expect(a.apply(msg(2, { events: [out(2)], ends: [], src: 9, part: { n: 2, of: 2 } })).map((e) => e.seq)).toEqual([1, 2])
    expect(s.position()).toEqual({ logSeq: 2, eventsSeq: 9 })
    s.close()
  })

  it('drops the parts of a group its writer never finished, and goes on with the next record', () => {
    const s = store()
    const a = new RecordApplier(s, silentLogger())
    a.apply(msg(1, { events: [out(1)], ends: [], part: { n: 1, of: 3 } }))
    a.apply(msg(2, { events: [out(2)], ends: [], part: { n: 2, of: 3 } }))
    expect(a.pending).toBe(true)
    // The next leader's first record: the dead leader's half group is not applied.
    expect(a.apply(msg(3, { events: [out(1)], ends: [], src: 4 })).map((e) => e.seq)).toEqual([1])
    expect(a.pending).toBe(false)
    expect(s.eventsAfter('japply01', 0, 10, { output: true }).map((e) => e.seq)).toEqual([1])
    expect(s.position().logSeq).toBe(3)
    // A part whose first parts are missing is skipped.
    expect(a.apply(msg(4, { events: [out(2)], ends: [], part: { n: 2, of: 2 } }))).toEqual([])
    s.close()
  })
})
