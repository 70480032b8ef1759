import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { notRunEvent } from '@apiary/shared'
import { createLogger, silentLogger } from '@apiary/shared/runtime'
import { type FinalEvent, JOURNAL_FILE, journalDir, JournalIndex, openJournal, readJournalText } from './journal.ts'

const HOUR = 3600_000
const T0 = 1_700_000_000_000
const ended = (jobId: string, node: string, ts = T0): FinalEvent => ({ ...notRunEvent(jobId, node, 'ok', 'done', ts), cause: null })
const taken = (jobId: string, node: string, at = T0, expiresAt = T0 + HOUR) => ({ t: 'taken' as const, jobId, node, at, expiresAt })
const jobOf = (i: number) => `j${String(i).padStart(8, '0')}`

/** A logger whose lines the test reads. */
function recordingLogger() {
  const lines: Array<{ level: number; msg: string } & Record<string, unknown>> = []
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l))
      cb()
    },
  })
  return { log: createLogger({ component: 'test', level: 'info', destination: sink }), warnings: () => lines.filter((l) => l.level === 40).map((l) => l.msg), lines }
}

describe('JournalIndex', () => {
  it('holds at most maxEntries, forgetting the oldest first', () => {
    const index = new JournalIndex({ maxEntries: 3 })
    for (let i = 1; i <= 3; i++) expect(index.apply(taken(jobOf(i), 'n1'))).toEqual([])
    const dropped = index.apply(taken(jobOf(4), 'n1'))
    expect(dropped.map((e) => e.jobId)).toEqual([jobOf(1)])
    expect(index.size).toBe(3)
    expect(index.get(jobOf(1), 'n1')).toBeUndefined()
    expect(index.get(jobOf(4), 'n1')).toMatchObject({ final: null })
  })

  it('keeps an entry its keep past its grant’s expiry, then drops it', () => {
    const index = new JournalIndex({ keepMs: HOUR })
    index.apply(taken(jobOf(1), 'n1', T0, T0 + HOUR))
    index.apply(taken(jobOf(2), 'n1', T0, T0 + 5 * HOUR))
    expect(index.prune(T0 + 2 * HOUR)).toBe(0)
    expect(index.prune(T0 + 2 * HOUR + 1)).toBe(1)
    expect([...index.entries()].map((e) => e.jobId)).toEqual([jobOf(2)])
  })

  it('counts the records that rebuild it, and says when a file has grown well past them', () => {
    const index = new JournalIndex({ compactSlack: 10 })
    index.apply(taken(jobOf(1), 'n1'))
    index.apply({ t: 'finished', jobId: jobOf(1), node: 'n1', at: T0, expiresAt: T0 + HOUR, event: ended(jobOf(1), 'n1') })
    index.apply(taken(jobOf(2), 'n1'))
    expect(index.records).toBe(3)
    expect(index.compactionDue(16)).toBe(false)
    expect(index.compactionDue(17)).toBe(true)
    const again = new JournalIndex()
    const report = readJournalText(index.lines().join(''), again)
    expect(report).toMatchObject({ records: 3, torn: false, corrupt: 0 })
    expect([...again.entries()]).toEqual([...index.entries()])
  })

  it('reads an end whose taken record is gone, and refuses an event that is not this task’s end', () => {
    const index = new JournalIndex()
    const good = { t: 'finished', jobId: jobOf(1), node: 'n1', at: T0, expiresAt: T0 + HOUR, event: ended(jobOf(1), 'n1') }
    const other = { ...good, jobId: jobOf(2) }
    const started = { ...good, event: { jobId: jobOf(1), node: 'n1', ts: T0, kind: 'node.started', human: 'n1: started' } }
    const report = readJournalText([good, other, started].map((r) => `${JSON.stringify(r)}\n`).join(''), index)
    expect(report).toMatchObject({ records: 1, corrupt: 2, firstCorruptLine: 2 })
    expect(index.get(jobOf(1), 'n1')?.final?.state).toBe('ok')
  })
})

describe('openJournal', () => {
  let root: string
  let dir: string
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'apiary-journal-'))
    dir = journalDir(root, 'worker', 'web-1')
  })
  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })
  const file = () => join(dir, JOURNAL_FILE)
  const fileLines = async () => (await readFile(file(), 'utf8')).split('\n').filter(Boolean)

  it('makes its directory 0700 and its file 0600, and writes ids, times and the final event only', async () => {
    const j = await openJournal({ dir, log: silentLogger() })
    const { entry, written } = j.take(jobOf(1), 'web-1', T0 + HOUR)
    await written
    await j.finish(entry, ended(jobOf(1), 'web-1'))
    await j.close()
    expect((await stat(dir)).mode & 0o777).toBe(0o700)
    expect((await stat(file())).mode & 0o777).toBe(0o600)
    const records = (await fileLines()).map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(records.map((r) => Object.keys(r).sort())).toEqual([
      ['at', 'expiresAt', 'jobId', 'node', 't'],
      ['at', 'event', 'expiresAt', 'jobId', 'node', 't'],
    ])
  })

  it('remembers across a restart what it took and how each ended; what never ended is unfinished', async () => {
    const j = await openJournal({ dir, log: silentLogger() })
    const a = j.take(jobOf(1), 'web-1', Date.now() + HOUR)
    const b = j.take(jobOf(2), 'web-1', Date.now() + HOUR)
    await Promise.all([a.written, b.written])
    await j.finish(a.entry, ended(jobOf(1), 'web-1'))
    // A crash: the file is left as it is (closing writes nothing more).
    await j.close()
    const again = await openJournal({ dir, log: silentLogger() })
    expect(again.get(jobOf(1), 'web-1')?.final).toEqual(ended(jobOf(1), 'web-1'))
    expect(again.get(jobOf(2), 'web-1')).toMatchObject({ final: null })
    expect(again.unfinished().map((e) => e.jobId)).toEqual([jobOf(2)])
    expect(again.stats()).toMatchObject({ entries: 2, fileRecords: 3 })
    await again.close()
  })

  it('groups the records of one moment into one write: 4,096 takes, a handful of fsyncs', async () => {
    const j = await openJournal({ dir, log: silentLogger() })
    const expiresAt = Date.now() + HOUR
    const takes = Array.from({ length: 4096 }, (_, i) => j.take(jobOf(i), 'web-1', expiresAt).written)
    await Promise.all(takes)
    expect(j.stats()).toMatchObject({ entries: 4096, fileRecords: 4096 })
    expect(j.stats().writes).toBeLessThanOrEqual(2)
    await j.close()
    expect(await fileLines()).toHaveLength(4096)
  })

  it('ignores a torn last line, skips a corrupt one with a warning, and writes on cleanly after', async () => {
    const j = await openJournal({ dir, log: silentLogger() })
    await Promise.all([1, 2].map((i) => j.take(jobOf(i), 'web-1', Date.now() + HOUR).written))
    await j.close()
    const [first, second] = await fileLines()
    await writeFile(file(), `${first}\n{"t":"taken","jobId":\n${second}\n{"t":"finished","jobId":"${jobOf(1)}","no`)
    const { log, warnings, lines } = recordingLogger()
    const again = await openJournal({ dir, log })
    expect(warnings()).toEqual(['skipped journal lines that are not records'])
    expect(lines.find((l) => l.msg.startsWith('skipped'))).toMatchObject({ lines: 1, firstLine: 2 })
    expect(lines.some((l) => l.msg.startsWith('ignored the journal’s last line'))).toBe(true)
    expect(again.stats().entries).toBe(2)
    await again.take(jobOf(3), 'web-1', Date.now() + HOUR).written
    await again.close()
    // Nothing of the torn or corrupt lines is left for the new record to be glued to.
    const third = await openJournal({ dir, log: recordingLogger().log })
    expect(third.stats()).toMatchObject({ entries: 3, fileRecords: 3 })
    expect(third.unfinished().map((e) => e.jobId)).toEqual([jobOf(1), jobOf(2), jobOf(3)])
    await third.close()
  })

  it('never crashes on a file that is not a journal at all', async () => {
    const j = await openJournal({ dir, log: silentLogger() })
    await j.close()
    await writeFile(file(), Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0x7b, 0x0a, 0x5b, 0x5d, 0x0a, 0x6e, 0x75, 0x6c, 0x6c, 0x0a]))
    const { log, warnings } = recordingLogger()
    const again = await openJournal({ dir, log })
    expect(warnings()).toEqual(['skipped journal lines that are not records'])
    expect(again.stats()).toMatchObject({ entries: 0, fileRecords: 0 })
    await again.close()
  })

  it('drops entries past their keep when it opens, and rewrites the file without them', async () => {
    let now = T0
    const j = await openJournal({ dir, log: silentLogger(), keepMs: HOUR, now: () => now })
    await j.take(jobOf(1), 'web-1', T0 + HOUR).written
    await j.take(jobOf(2), 'web-1', T0 + 10 * HOUR).written
    await j.close()
    now = T0 + 3 * HOUR
    const again = await openJournal({ dir, log: silentLogger(), keepMs: HOUR, now: () => now })
    expect(again.get(jobOf(1), 'web-1')).toBeUndefined()
    expect(again.get(jobOf(2), 'web-1')).toBeDefined()
    await again.close()
    expect(await fileLines()).toHaveLength(1)
  })

  it('holds at most maxEntries: past it, the oldest are forgotten with a warning, on disk too', async () => {
    const { log, warnings } = recordingLogger()
    const j = await openJournal({ dir, log, maxEntries: 100, compactSlack: 0 })
    const expiresAt = Date.now() + HOUR
    for (let i = 0; i < 500; i++) await j.take(jobOf(i), 'web-1', expiresAt).written
    expect(j.stats().entries).toBe(100)
    expect(j.get(jobOf(399), 'web-1')).toBeUndefined()
    expect(j.get(jobOf(400), 'web-1')).toBeDefined()
    expect(warnings()[0]).toMatch(/^the journal is full: forgot its oldest tasks/)
    // The file is rewritten as it grows past twice what is live: it stays bounded too.
    expect(j.stats().rewrites).toBeGreaterThan(0)
    expect(j.stats().fileRecords).toBeLessThanOrEqual(200)
    await j.close()
    expect((await fileLines()).length).toBeLessThanOrEqual(200)
    // A journal opened with a lower bound than its file holds forgets the oldest at once, and says so.
    const small = recordingLogger()
    const again = await openJournal({ dir, log: small.log, maxEntries: 10 })
    expect(again.stats().entries).toBe(10)
    expect(again.get(jobOf(490), 'web-1')).toBeDefined()
    expect(small.warnings()).toEqual(['the journal holds more tasks than its bound: forgot the oldest'])
    await again.close()
    expect(await fileLines()).toHaveLength(10)
  })

  it('rewrites the file once it holds well past what is live, and loses nothing live doing so', async () => {
    let now = Date.now()
    const j = await openJournal({ dir, log: silentLogger(), keepMs: 0, compactSlack: 8, now: () => now })
    // Short-lived grants: each ends and expires; the pruning a minute later leaves only the last.
    for (let i = 0; i < 50; i++) {
      const { entry, written } = j.take(jobOf(i), 'web-1', now + 1000)
      await written
      await j.finish(entry, ended(jobOf(i), 'web-1', now))
      now += 2000
    }
    const live = j.take(jobOf(999), 'web-1', now + HOUR)
    await live.written
    const before = j.stats().rewrites
    now += 60_000
    await j.finish(live.entry, ended(jobOf(999), 'web-1', now))
    expect(j.stats().rewrites).toBe(before + 1)
    expect(j.stats()).toMatchObject({ entries: 1, fileRecords: 2 })
    await j.close()
    const again = await openJournal({ dir, log: silentLogger(), now: () => now })
    expect(again.get(jobOf(999), 'web-1')?.final?.state).toBe('ok')
    expect(again.stats().entries).toBe(1)
    await again.close()
  })

  it('a record appended while the file is rewritten lands in the new file', async () => {
    const j = await openJournal({ dir, log: silentLogger(), maxEntries: 4, compactSlack: 0 })
    const expiresAt = Date.now() + HOUR
    // Many records in flight at once: rewrites and appends interleave.
    await Promise.all(Array.from({ length: 40 }, (_, i) => j.take(jobOf(i), 'web-1', expiresAt).written))
    for (let i = 40; i < 60; i++) void j.take(jobOf(i), 'web-1', expiresAt).written
    await j.take(jobOf(60), 'web-1', expiresAt).written
    await j.close()
    const again = await openJournal({ dir, log: silentLogger(), maxEntries: 4 })
    expect([...again.unfinished()].map((e) => e.jobId)).toEqual([jobOf(57), jobOf(58), jobOf(59), jobOf(60)])
    await again.close()
  })

  it('is in memory only without a directory', async () => {
    const j = await openJournal({ dir: null, log: silentLogger() })
    await j.take(jobOf(1), 'web-1', Date.now() + HOUR).written
    expect(j.get(jobOf(1), 'web-1')).toBeDefined()
    expect(j.stats()).toEqual({ entries: 1, fileRecords: 0, writes: 0, rewrites: 0 })
    await j.close()
  })

  it('keeps the directory of each worker apart, one path component per id', () => {
    expect(journalDir('/var/lib/apiary', 'worker', 'web-1')).toBe('/var/lib/apiary/worker-web-1')
    expect(journalDir('/var/lib/apiary', 'ssh-worker', 'ssh-eu-1')).toBe('/var/lib/apiary/ssh-worker-ssh-eu-1')
    expect(() => journalDir('/var/lib/apiary', 'worker', '../x')).toThrow()
  })

  it('appends to a journal another run left, after what it holds', async () => {
    const j = await openJournal({ dir, log: silentLogger() })
    await j.take(jobOf(1), 'web-1', Date.now() + HOUR).written
    await j.close()
    await appendFile(file(), '')
    const again = await openJournal({ dir, log: silentLogger() })
    await again.take(jobOf(2), 'web-1', Date.now() + HOUR).written
    await again.close()
    expect((await fileLines()).map((l) => (JSON.parse(l) as { jobId: string }).jobId)).toEqual([jobOf(1), jobOf(2)])
  })
})
