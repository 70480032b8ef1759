import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import Database from 'libsql'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { againstHead, AUDIT_GENESIS, ChainVerifier, describeVerdict } from '@apiary/shared'
import { createLogger } from '@apiary/shared/runtime'
import { AuditLog } from './audit.ts'
import { Auditor } from './auditor.ts'
import { FAILURE_WINDOW_MS } from './tracker.ts'

const verify = (audit: AuditLog) => {
  const v = new ChainVerifier()
  for (const r of audit.all(3)) if (!v.push(r)) break
  return v.verdict()
}

describe('AuditLog', () => {
  let dir: string
  let path: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apiary-audit-'))
    path = join(dir, 'audit.db')
  })
  afterEach(() => rm(dir, { recursive: true, force: true }))

  const fill = (audit: AuditLog, n: number) => {
    for (let i = 1; i <= n; i++) audit.append({ kind: 'job.submitted', user: i % 2 ? 'alice' : 'bob', source: '127.0.0.1', detail: { jobId: `j${i}`, nodes: i } })
  }

  it('catches records removed from the end of the chain against the head the queen keeps', () => {
    const audit = AuditLog.open(path, { queenId: 'q1' })
    fill(audit, 6)
    const head = audit.head()
    expect(againstHead(verify(audit), head)).toMatchObject({ intact: true })
    const db = new Database(path)
    db.prepare('DELETE FROM audit WHERE seq > 4').run()
    db.close()
    const v = againstHead(verify(audit), head)
    expect(v).toMatchObject({ intact: false, broken: { kind: 'head', seq: 5 } })
    expect(describeVerdict(v)[0]).toBe('broken: the queen\'s head is record 6 but the chain ends at record 4: records 5–6 were removed')
    // A chain no record of which was written yet matches the genesis head.
    expect(againstHead(new ChainVerifier().verdict(), { seq: 0, hash: AUDIT_GENESIS })).toMatchObject({ intact: true })
    audit.close()
  })

  it('chains records in a 0600 file, survives a reopen, and verifies intact', async () => {
    let audit = AuditLog.open(path, { queenId: 'q1' })
    fill(audit, 5)
    const first = audit.page(0, 1).records[0]!
    expect(first).toMatchObject({ seq: 1, queen: 'q1', prev: AUDIT_GENESIS, kind: 'job.submitted', user: 'alice' })
    audit.close()
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    audit = AuditLog.open(path, { queenId: 'q1' })
    audit.append({ kind: 'login', user: 'bob', source: '::1' })
    const v = verify(audit)
    expect(v).toMatchObject({ intact: true, records: 6, first: 1, head: audit.head() })
    expect(describeVerdict(v)).toEqual([`intact: 6 records, head 6 ${audit.head().hash}`])
    expect(audit.page(0, 10, { user: 'bob' }).records.map((r) => r.seq)).toEqual([2, 4, 6])
    expect(audit.page(2, 2)).toMatchObject({ next: 4 })
    audit.close()
  })

  it('names the record edited with sqlite (hash mismatch)', () => {
    const audit = AuditLog.open(path, { queenId: 'q1' })
    fill(audit, 6)
    const db = new Database(path)
    db.prepare(`UPDATE audit SET body = json_set(body, '$.detail.nodes', 1000) WHERE seq = 3`).run()
    db.close()
    const v = verify(audit)
    expect(v).toMatchObject({ intact: false, broken: { seq: 3, kind: 'hash' }, head: { seq: 2 } })
    expect(describeVerdict(v)[0]).toBe('broken: record 3: hash mismatch: its content is not what was hashed (the record was edited)')
    audit.close()
  })

  it('sees a key added to a stored record', () => {
    const audit = AuditLog.open(path, { queenId: 'q1' })
    fill(audit, 3)
    const db = new Database(path)
    db.prepare(`UPDATE audit SET body = json_set(body, '$.note', 'nothing to see') WHERE seq = 2`).run()
    db.close()
    expect(verify(audit)).toMatchObject({ intact: false, broken: { seq: 2, kind: 'hash' } })
    audit.close()
  })

  it('names the record after one deleted with sqlite (prev mismatch)', () => {
    const audit = AuditLog.open(path, { queenId: 'q1' })
    fill(audit, 6)
    const db = new Database(path)
    db.prepare('DELETE FROM audit WHERE seq = 4').run()
    db.close()
    const v = verify(audit)
    expect(v).toMatchObject({ intact: false, broken: { seq: 5, kind: 'prev' } })
    expect(v.broken?.message).toBe('record 5: prev mismatch: it does not follow record 3 (1 record before it removed)')
    audit.close()
  })

  it('prunes whole records from the oldest, never the newest, and says so in the chain; the verifier accepts the gap only then', () => {
    let now = 0
    const audit = AuditLog.open(path, { queenId: 'q1', now: () => now })
    for (let i = 0; i < 5; i++) {
      now = i * 1000
      audit.append({ kind: 'login', user: 'alice', source: 'x' })
    }
    const third = audit.page(2, 1).records[0]!
    expect(audit.prune(2500)).toBe(3)
    expect(audit.page(0, 10).records.map((r) => [r.seq, r.kind])).toEqual([[4, 'login'], [5, 'login'], [6, 'audit.pruned']])
    expect(audit.page(5, 1).records[0]!.detail).toEqual({ upTo: 3, hash: third.hash })
    const v = verify(audit)
    expect(v).toMatchObject({ intact: true, first: 4, records: 3 })
    expect(describeVerdict(v)[0]).toBe('chain starts at record 4; earlier records pruned by retention')
    // Deleting more from the start than retention did is caught.
    const db = new Database(path)
    db.prepare('DELETE FROM audit WHERE seq = 4').run()
    db.close()
    expect(verify(audit)).toMatchObject({ intact: false, broken: { seq: 5, message: expect.stringContaining('no audit.pruned record says retention removed the 4 before it') } })
    // Never the newest; a record dated back amid newer ones is not cut out of the middle.
    now = 1e12
    expect(audit.prune(1e12)).toBe(1)
    expect(audit.page(0, 10).records.map((r) => r.kind)).toEqual(['audit.pruned', 'audit.pruned'])
    expect(verify(audit)).toMatchObject({ intact: true })
    audit.close()
  })

  it('prunes only a run from the oldest: an old-dated record after a newer one stays', () => {
    let now = 5000
    const audit = AuditLog.open(path, { queenId: 'q1', now: () => now })
    audit.append({ kind: 'login', user: 'a', source: 'x' })
    now = 100 // a clock that ran behind
    audit.append({ kind: 'login', user: 'b', source: 'x' })
    now = 6000
    audit.append({ kind: 'login', user: 'c', source: 'x' })
    expect(audit.prune(1000)).toBe(0)
    expect(verify(audit)).toMatchObject({ intact: true, first: 1, records: 3 })
    audit.close()
  })
})

describe('Auditor', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'apiary-auditor-'))
  })
  afterEach(() => rm(dir, { recursive: true, force: true }))

  it('writes a flood of failed authentications as one record per address per minute, and logs the head at close', () => {
    let now = 0
    const lines: string[] = []
    const log = createLogger({
      component: 'test',
      destination: new Writable({
        write(chunk, _e, cb) {
          lines.push(String(chunk))
          cb()
        },
      }),
    })
    const audit = AuditLog.open(join(dir, 'audit.db'), { queenId: 'q', now: () => now })
    const auditor = new Auditor({ audit, log, retentionMs: 30 * 86_400_000, now: () => now })
    for (let i = 0; i < 10_000; i++) auditor.failed('10.0.0.9', 'unknown token')
    auditor.flush()
    expect(audit.head().seq).toBe(0)
    now += FAILURE_WINDOW_MS
    auditor.flush()
    for (let i = 0; i < 10_000; i++) auditor.failed('10.0.0.9', 'unknown token')
    auditor.flush()
    expect(audit.page(0, 10).records).toEqual([expect.objectContaining({ kind: 'auth.failed', source: '10.0.0.9', detail: expect.objectContaining({ count: 10_000 }) })])
    auditor.seen('alice', '10.0.0.1')
    auditor.seen('alice', '10.0.0.1')
    auditor.close()
    const records = audit.page(0, 10).records
    expect(records.map((r) => r.kind)).toEqual(['auth.failed', 'login', 'auth.failed'])
    const head = lines.map((l) => JSON.parse(l) as { msg: string; auditSeq?: number; auditHash?: string }).filter((l) => l.msg === 'audit head')
    expect(head.at(-1)).toMatchObject({ auditSeq: 3, auditHash: audit.head().hash })
    audit.close()
  })
})
