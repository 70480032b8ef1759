import { randomBytes } from 'node:crypto'
import { chmod, type FileHandle, mkdir, open, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'
import { ApiaryError, errorMessage, isApiaryError, JobId, type Logger, NodeId, WireEvent, type WireEventOf } from '@apiary/shared'
import { rateLimitedWarning, readSecretBytes } from '@apiary/shared/runtime'

/**
 * What a worker took and how each task ended, kept so that it runs a (job, node) at most once
 * across re-offers, reconnects and its own restarts (DESIGN.md, "Durability and failover").
 *
 * On disk it is one append-only file of JSON lines in the worker's own directory (0700; the
 * file 0600): a `taken` record, fsynced before the task is acknowledged, and a `finished`
 * record with the task's final event. Nothing secret is written: ids, times and the final
 * event, which carries no env or stdin.
 */

/** A task's final event, as the worker published it. */
export type FinalEvent = WireEventOf<'node.finished'>

/** One task this worker took. */
export interface JournalEntry {
  readonly jobId: string
  readonly node: string
  /** When it was taken (epoch ms). */
  readonly at: number
  /** The grant's expiry: no offer under that grant comes later. */
  readonly expiresAt: number
  /** Its final event once it ended; null while it runs, or when the worker died while it ran. */
  final: FinalEvent | null
}

/** The most tasks a journal remembers unless told otherwise; the oldest are forgotten first. */
export const DEFAULT_JOURNAL_ENTRIES = 100_000
/**
 * How long an entry is kept past its grant's expiry. A re-offer comes under a new grant (a new
 * attempt) only while its job runs, which is mostly within the first grant's life; this covers
 * a queen that came back late and re-offers a node whose final event never reached the stream.
 */
export const DEFAULT_JOURNAL_KEEP_MS = 24 * 3600_000
/** The journal file in a worker's journal directory. */
export const JOURNAL_FILE = 'journal.jsonl'

const Ms = z.number().int().min(0)
const Taken = z.strictObject({ t: z.literal('taken'), jobId: JobId, node: NodeId, at: Ms, expiresAt: Ms })
const Finished = z.strictObject({ t: z.literal('finished'), jobId: JobId, node: NodeId, at: Ms, expiresAt: Ms, event: WireEvent })
const JournalRecord = z
  .discriminatedUnion('t', [Taken, Finished])
  .refine((r) => r.t === 'taken' || (r.event.kind === 'node.finished' && r.event.jobId === r.jobId && r.event.node === r.node), {
    message: 'the event is not the final event of this task',
    path: ['event'],
  })
type JournalRecord = z.infer<typeof Taken> | (Omit<z.infer<typeof Finished>, 'event'> & { event: FinalEvent })

export interface JournalBounds {
  /** The most tasks remembered (default `DEFAULT_JOURNAL_ENTRIES`); past it the oldest go first. */
  maxEntries?: number
  /** How long past its grant's expiry an entry is kept (default `DEFAULT_JOURNAL_KEEP_MS`). */
  keepMs?: number
  /**
   * Records the file may hold beyond twice the live ones before it is rewritten (default 1,024):
   * a rewrite costs one pass over what is live, so it waits until the file holds twice that.
   */
  compactSlack?: number
}

const keyOf = (jobId: string, node: string) => `${jobId}/${node}`

/**
 * The journal's contents and policy, without a file: which tasks it holds, what falls out (past
 * expiry, past the bound), when the file is worth rewriting, and the records that rebuild it.
 */
export class JournalIndex {
  readonly #entries = new Map<string, JournalEntry>()
  readonly #max: number
  readonly #keepMs: number
  readonly #slack: number
  #finished = 0

  constructor(bounds: JournalBounds = {}) {
    this.#max = bounds.maxEntries ?? DEFAULT_JOURNAL_ENTRIES
    this.#keepMs = bounds.keepMs ?? DEFAULT_JOURNAL_KEEP_MS
    this.#slack = bounds.compactSlack ?? 1024
    if (!Number.isSafeInteger(this.#max) || this.#max < 1) throw new ApiaryError('invalid_input', `the journal must hold at least one task, not ${this.#max}`, 'maxEntries')
  }

  get size(): number {
    return this.#entries.size
  }

  /** How many records rebuild what is live (a taken one per entry, a finished one per ended entry). */
  get records(): number {
    return this.#entries.size + this.#finished
  }

  get(jobId: string, node: string): JournalEntry | undefined {
    return this.#entries.get(keyOf(jobId, node))
  }

  entries(): IterableIterator<JournalEntry> {
    return this.#entries.values()
  }

  /**
   * Applies one record (a new one, or one read back) and returns the entries that fell out of
   * the bound to make room, oldest first.
   */
  apply(r: JournalRecord): JournalEntry[] {
    const key = keyOf(r.jobId, r.node)
    const had = this.#entries.get(key)
    if (r.t === 'taken') {
      if (had) this.#delete(key, had)
      this.#entries.set(key, { jobId: r.jobId, node: r.node, at: r.at, expiresAt: r.expiresAt, final: null })
    } else if (had) {
      if (had.final === null) this.#finished++
      had.final = r.event
    } else {
      // Its taken record fell out of the bound, or was not readable: the end is still worth keeping.
      this.#entries.set(key, { jobId: r.jobId, node: r.node, at: r.at, expiresAt: r.expiresAt, final: r.event })
      this.#finished++
    }
    const dropped: JournalEntry[] = []
    for (const [k, e] of this.#entries) {
      if (this.#entries.size <= this.#max) break
      this.#delete(k, e)
      dropped.push(e)
    }
    return dropped
  }

  /** Forgets one entry (a task refused after all, because its record could not be written). */
  delete(jobId: string, node: string): void {
    const key = keyOf(jobId, node)
    const e = this.#entries.get(key)
    if (e) this.#delete(key, e)
  }

  /** Drops the entries kept long enough past their grant's expiry; returns how many. */
  prune(now: number): number {
    let n = 0
    for (const [k, e] of this.#entries) {
      if (e.expiresAt + this.#keepMs >= now) continue
      this.#delete(k, e)
      n++
    }
    return n
  }

  /** Whether a file of `fileRecords` records has grown well past what is live. */
  compactionDue(fileRecords: number): boolean {
    return fileRecords > 2 * this.records + this.#slack
  }

  /** The records that rebuild what is live, oldest first, one JSON line each. */
  lines(): string[] {
    const out: string[] = []
    for (const e of this.#entries.values()) {
      out.push(line({ t: 'taken', jobId: e.jobId, node: e.node, at: e.at, expiresAt: e.expiresAt }))
      if (e.final) out.push(line({ t: 'finished', jobId: e.jobId, node: e.node, at: e.final.ts, expiresAt: e.expiresAt, event: e.final }))
    }
    return out
  }

  #delete(key: string, e: JournalEntry): void {
    this.#entries.delete(key)
    if (e.final) this.#finished--
  }
}

const line = (r: JournalRecord) => `${JSON.stringify(r)}\n`

/** What reading a journal file found besides its records. */
export interface JournalReadReport {
  records: number
  /** A last line without its newline: a write cut short by a crash, ignored. */
  torn: boolean
  /** Lines that are not records, skipped; the first one's number. */
  corrupt: number
  firstCorruptLine: number | null
  /** Entries that fell out of the bound while reading. */
  dropped: number
}

/** Reads a journal file's text into `index`. Never throws: what cannot be read is counted and skipped. */
export function readJournalText(text: string, index: JournalIndex): JournalReadReport {
  const report: JournalReadReport = { records: 0, torn: false, corrupt: 0, firstCorruptLine: null, dropped: 0 }
  const lines = text.split('\n')
  // The text after the last newline: empty for a whole file, a torn record otherwise.
  const last = lines.pop()!
  if (last !== '') report.torn = true
  for (const [i, l] of lines.entries()) {
    if (l === '') continue
    let parsed
    try {
      parsed = JournalRecord.safeParse(JSON.parse(l))
    } catch {
      parsed = undefined
    }
    if (!parsed?.success) {
      report.corrupt++
      report.firstCorruptLine ??= i + 1
      continue
    }
    report.records++
    report.dropped += index.apply(parsed.data as JournalRecord).length
  }
  return report
}

export interface JournalOptions extends JournalBounds {
  /** The directory of this worker's journal (made 0700), or null to keep it in memory only. */
  dir: string | null
  log: Logger
  now?: () => number
}

/**
 * The journal a worker consults before it runs a task. All changes apply in memory at once (a
 * second delivery of a task sees it taken while its record is on its way to the disk); the
 * promise each returns resolves once the record is on disk. Records of one moment share one
 * write and one fsync, so an SSH worker taking 4,096 tasks at once does not fsync 4,096 times.
 */
export interface Journal {
  /**
   * This worker's secret for the dedupe ids of the events it stores (kept beside the journal,
   * 0600, so a restarted worker stores a task's events under the same ids). The event stream
   * dedupes by id alone, whatever the subject: an id another node could guess would let it
   * have this node's events dropped as duplicates.
   */
  readonly secret: Buffer
  get(jobId: string, node: string): JournalEntry | undefined
  /** Records that this worker took a task; resolves once the record is fsynced. */
  take(jobId: string, node: string, expiresAt: number): { entry: JournalEntry; written: Promise<void> }
  /** Records how a task ended; resolves once fsynced. */
  finish(entry: JournalEntry, event: FinalEvent): Promise<void>
  /** Forgets a task it refused after all (its taken record could not be written). */
  forget(entry: JournalEntry): void
  /** Tasks taken before this worker (re)started that never finished: it died while they ran. */
  unfinished(): readonly JournalEntry[]
  stats(): JournalStats
  /** Writes what is pending and closes the file. */
  close(): Promise<void>
}

export interface JournalStats {
  /** Tasks remembered. */
  entries: number
  /** Records in the file (0 in memory). */
  fileRecords: number
  /** Appends written and fsynced (each holds every record that came meanwhile). */
  writes: number
  /** Times the file was rewritten to hold only what is live. */
  rewrites: number
}

/** The journal directory of a worker: `<stateDir>/worker-<id>` for an agent, `<stateDir>/ssh-worker-<id>` for an SSH worker. */
export function journalDir(stateDir: string, role: 'worker' | 'ssh-worker', id: string): string {
  // A node id holds no '/' and does not start with '.' (NodeId): one path component.
  return join(stateDir, `${role}-${NodeId.parse(id)}`)
}

/**
 * Opens (or makes) the journal in `o.dir`, or one in memory when `o.dir` is null. Reading it
 * back, a torn last line is ignored and a corrupt one skipped with a warning, entries past
 * their keep are dropped, and the file is rewritten when it holds much that is no longer live.
 *
 * @example const journal = await openJournal({ dir: journalDir(stateDir, 'worker', nodeId), log })
 */
export async function openJournal(o: JournalOptions): Promise<Journal> {
  if (o.dir === null) return memoryJournal(o)
  const now = o.now ?? Date.now
  const index = new JournalIndex(o)
  const dir = o.dir
  const path = join(dir, JOURNAL_FILE)
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await chmod(dir, 0o700)
  } catch (err) {
    throw new ApiaryError('internal', `cannot make the journal directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'stateDir', { cause: err })
  }
  let text = ''
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new ApiaryError('internal', `cannot read the journal ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'stateDir', { cause: err })
    }
  }
  const report = readJournalText(text, index)
  const log = o.log.child({ journal: path })
  if (report.torn) log.info('ignored the journal’s last line: a write cut short when the worker stopped')
  if (report.corrupt > 0) log.warn({ lines: report.corrupt, firstLine: report.firstCorruptLine }, 'skipped journal lines that are not records')
  if (report.dropped > 0) log.warn({ dropped: report.dropped, maxEntries: o.maxEntries ?? DEFAULT_JOURNAL_ENTRIES }, 'the journal holds more tasks than its bound: forgot the oldest')
  const expired = index.prune(now())
  const unfinished = [...index.entries()].filter((e) => e.final === null)
  const secret = await readOrMakeSecret(join(dir, SECRET_FILE))
  const file = await JournalFile.open(dir, path)
  const journal = new LiveJournal(index, file, unfinished, log, now, secret)
  // A torn or corrupt line must not sit before new records: a rewrite drops it.
  if (report.torn || report.corrupt > 0 || report.dropped > 0 || expired > 0 || index.compactionDue(report.records)) await file.compact(index.lines())
  else file.records = report.records
  return journal
}

/**
 * A journal in memory only: a task delivered twice runs once while the process lives, but a
 * restart forgets it all (a worker embedded without a state directory, a benchmark's fleet).
 */
export function memoryJournal(o: JournalBounds & { log: Logger; now?: () => number }): Journal {
  return new LiveJournal(new JournalIndex(o), null, [], o.log, o.now ?? Date.now, randomBytes(32))
}

/** The file beside the journal that holds the worker's dedupe secret. */
export const SECRET_FILE = 'dedupe.key'

/** Reads the worker's 32-byte secret, or makes one (0600) the first time. */
async function readOrMakeSecret(path: string): Promise<Buffer> {
  try {
    const held = await readSecretBytes(path, 'dedupe key')
    if (held.length === 32) return held
  } catch (err) {
    if (!isApiaryError(err, 'not_found')) throw new ApiaryError('internal', `cannot read the worker's dedupe key: ${errorMessage(err)}`, 'stateDir', { cause: err })
  }
  const secret = randomBytes(32)
  await writeFile(path, secret, { mode: 0o600 })
  await chmod(path, 0o600)
  return secret
}

class LiveJournal implements Journal {
  readonly #index: JournalIndex
  readonly #file: JournalFile | null
  readonly #unfinished: readonly JournalEntry[]
  readonly #now: () => number
  readonly #full: { note(fields: Record<string, unknown>): void }
  #lastPrune: number

  constructor(
    index: JournalIndex,
    file: JournalFile | null,
    unfinished: readonly JournalEntry[],
    log: Logger,
    now: () => number,
    readonly secret: Buffer,
  ) {
    this.#index = index
    this.#file = file
    this.#unfinished = unfinished
    this.#now = now
    this.#full = rateLimitedWarning(log, 'the journal is full: forgot its oldest tasks (a re-offer of one of them would run it again)')
    this.#lastPrune = now()
    if (file) file.hooks = { due: (records) => this.#compactionDue(records), lines: () => index.lines() }
  }

  get(jobId: string, node: string) {
    return this.#index.get(jobId, node)
  }

  take(jobId: string, node: string, expiresAt: number) {
    const r: JournalRecord = { t: 'taken', jobId, node, at: this.#now(), expiresAt }
    this.#dropped(this.#index.apply(r))
    return { entry: this.#index.get(jobId, node)!, written: this.#file?.append(line(r)) ?? Promise.resolve() }
  }

  finish(entry: JournalEntry, event: FinalEvent) {
    const r: JournalRecord = { t: 'finished', jobId: entry.jobId, node: entry.node, at: event.ts, expiresAt: entry.expiresAt, event }
    this.#dropped(this.#index.apply(r))
    // The entry object the caller holds is the one the index keeps, unless it fell out meanwhile.
    entry.final = event
    return this.#file?.append(line(r)) ?? Promise.resolve()
  }

  forget(entry: JournalEntry) {
    this.#index.delete(entry.jobId, entry.node)
  }

  unfinished() {
    return this.#unfinished
  }

  stats(): JournalStats {
    return { entries: this.#index.size, fileRecords: this.#file?.records ?? 0, writes: this.#file?.writes ?? 0, rewrites: this.#file?.rewrites ?? 0 }
  }

  async close() {
    await this.#file?.close()
  }

  #dropped(entries: JournalEntry[]) {
    const oldest = entries[0]
    if (oldest) this.#full.note({ jobId: oldest.jobId, node: oldest.node, dropped: entries.length, entries: this.#index.size })
  }

  /** Before each write: drops expired entries (at most once a minute), then whether a file of `records` is worth rewriting. */
  #compactionDue(records: number): boolean {
    const now = this.#now()
    if (now - this.#lastPrune >= 60_000) {
      this.#lastPrune = now
      this.#index.prune(now)
    }
    return this.#index.compactionDue(records)
  }
}

/**
 * The journal's file: appends with group commit (one write and one fsync for every record that
 * came while the previous write was on its way), and rewrites through a temporary file and a
 * rename, so a crash leaves either the old file or the new one.
 */
class JournalFile {
  #fh: FileHandle
  readonly #dir: string
  readonly #path: string
  #queue: string[] = []
  #waiters: Array<{ resolve(): void; reject(err: unknown): void }> = []
  #writing: Promise<void> | null = null
  /** After a failed write the file may end in half a record: the next write rewrites it whole. */
  #broken = false
  #closed = false
  /** Records in the file. */
  records = 0
  writes = 0
  rewrites = 0
  /**
   * Asked before each write: whether a file that would hold `records` is worth rewriting, and
   * the lines of a rewrite (all that is live, the records being written included).
   */
  hooks: { due(records: number): boolean; lines(): string[] } = { due: () => false, lines: () => [] }

  private constructor(fh: FileHandle, dir: string, path: string) {
    this.#fh = fh
    this.#dir = dir
    this.#path = path
  }

  static async open(dir: string, path: string): Promise<JournalFile> {
    const fh = await open(path, 'a', 0o600)
    await fh.chmod(0o600)
    await syncDir(dir)
    return new JournalFile(fh, dir, path)
  }

  append(text: string): Promise<void> {
    if (this.#closed) return Promise.reject(new ApiaryError('closed', 'the journal is closed'))
    this.#queue.push(text)
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }))
    this.#writing ??= this.#drain()
    return done
  }

  /** Rewrites the file to hold exactly `lines`. */
  async compact(lines: string[]): Promise<void> {
    const tmp = `${this.#path}.tmp`
    const fh = await open(tmp, 'w', 0o600)
    try {
      await fh.chmod(0o600)
      await fh.writeFile(lines.join(''))
      await fh.datasync()
    } finally {
      await fh.close()
    }
    await rename(tmp, this.#path)
    await syncDir(this.#dir)
    const old = this.#fh
    this.#fh = await open(this.#path, 'a', 0o600)
    await old.close()
    this.records = lines.length
    this.rewrites++
    this.#broken = false
  }

  #closing: Promise<void> | undefined
  close(): Promise<void> {
    this.#closed = true
    this.#closing ??= (async () => {
      await this.#writing
      await this.#fh.close()
    })()
    return this.#closing
  }

  async #drain(): Promise<void> {
    // Let every record of this moment (one read off the socket, one drained queue) join the batch.
    await new Promise((r) => setImmediate(r))
    while (this.#queue.length > 0) {
      const batch = this.#queue
      const waiters = this.#waiters
      this.#queue = []
      this.#waiters = []
      try {
        // The index already holds the batch's records: a rewrite includes them.
        if (this.#broken || this.hooks.due(this.records + batch.length)) await this.compact(this.hooks.lines())
        else {
          await this.#fh.write(batch.join(''))
          await this.#fh.datasync()
          this.records += batch.length
          this.writes++
        }
        for (const w of waiters) w.resolve()
      } catch (err) {
        this.#broken = true
        for (const w of waiters) w.reject(err)
      }
    }
    this.#writing = null
  }
}

async function syncDir(dir: string): Promise<void> {
  // Makes a new or renamed file's name durable; some platforms cannot open a directory.
  let fh: FileHandle | undefined
  try {
    fh = await open(dir, 'r')
    await fh.sync()
  } catch {
    // Best effort: the data itself was fsynced.
  } finally {
    await fh?.close()
  }
}
