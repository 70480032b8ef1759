import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'libsql'
import { AUDIT_GENESIS, auditHash, type AuditHead, type AuditKind, type AuditPage, AuditRecord, canonicalJson } from '@apiary/shared'

/** What a caller appends; seq, ts, queen, prev and hash are the log's. */
export interface AuditEntry {
  kind: AuditKind
  user?: string
  source?: string
  detail?: Record<string, unknown>
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY,
  ts INTEGER NOT NULL,
  user TEXT,
  body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts);
`

/**
 * The queen's audit log: an append-only, hash-chained list of records in its own SQLite file
 * (`<state>/audit.db`, 0600), apart from the job index so job retention never touches it. Each
 * record's `hash` covers its canonical JSON (with `prev`, the hash before it), so an edited,
 * removed or reordered record breaks the chain (`ChainVerifier`). Retention removes whole
 * records from the oldest, never the newest (a new record always has one to chain to).
 *
 * @example
 * const audit = AuditLog.open(join(stateDir, 'audit.db'), { queenId: 'queen' })
 * audit.append({ kind: 'job.submitted', user: 'alice', source: '10.0.0.7', detail: { jobId } })
 */
export class AuditLog {
  readonly #db: InstanceType<typeof Database>
  readonly #insert
  readonly #last
  readonly #page
  readonly #pageSince
  readonly #pageUser
  readonly #pageBoth
  readonly #prune
  readonly #deleteUpTo
  #head: AuditHead

  private constructor(
    db: InstanceType<typeof Database>,
    private readonly queenId: string,
    private readonly now: () => number,
  ) {
    this.#db = db
    this.#insert = db.prepare('INSERT INTO audit (seq, ts, user, body) VALUES (?, ?, ?, ?)')
    this.#last = db.prepare('SELECT seq, body FROM audit ORDER BY seq DESC LIMIT 1')
    this.#page = db.prepare('SELECT seq, body FROM audit WHERE seq > ? ORDER BY seq LIMIT ?')
    this.#pageSince = db.prepare('SELECT seq, body FROM audit WHERE seq > ? AND ts >= ? ORDER BY seq LIMIT ?')
    this.#pageUser = db.prepare('SELECT seq, body FROM audit WHERE seq > ? AND user = ? ORDER BY seq LIMIT ?')
    this.#pageBoth = db.prepare('SELECT seq, body FROM audit WHERE seq > ? AND ts >= ? AND user = ? ORDER BY seq LIMIT ?')
    // Only a run from the oldest, up to the first record that is not old: a record dated in the
    // past by a clock that ran behind, amid newer ones, is never cut out of the middle.
    this.#prune = db.prepare(
      'SELECT seq, body FROM audit WHERE seq < COALESCE((SELECT MIN(seq) FROM audit WHERE ts >= ?), (SELECT MAX(seq) FROM audit)) ORDER BY seq LIMIT ?',
    )
    this.#deleteUpTo = db.prepare('DELETE FROM audit WHERE seq <= ?')
    const last = this.#last.get() as { seq: number; body: string } | undefined
    this.#head = last ? { seq: last.seq, hash: parseRow(last).hash } : { seq: 0, hash: AUDIT_GENESIS }
  }

  /** Opens (or makes, 0600 in a 0700 directory) the audit file. */
  /** Whether the file holds the audit table, read without changing it. */
  static hasTable(path: string): boolean {
    const db = new Database(path, { readonly: true })
    try {
      return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'").get() !== undefined
    } finally {
      db.close()
    }
  }

  static open(path: string, o: { queenId: string; now?: () => number }): AuditLog {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
    closeSync(openSync(path, 'a', 0o600))
    chmodSync(path, 0o600)
    const db = new Database(path)
    db.exec('PRAGMA journal_mode = WAL')
    db.exec('PRAGMA synchronous = FULL')
    db.exec(SCHEMA)
    return new AuditLog(db, o.queenId, o.now ?? Date.now)
  }

  /** Appends one record, chained to the last, and returns it. */
  append(e: AuditEntry): AuditRecord {
    const body = {
      seq: this.#head.seq + 1,
      ts: Math.floor(this.now()),
      queen: this.queenId,
      kind: e.kind,
      ...(e.user !== undefined ? { user: e.user } : {}),
      ...(e.source !== undefined ? { source: e.source } : {}),
      detail: e.detail ?? {},
      prev: this.#head.hash,
    }
    const record: AuditRecord = { ...body, hash: auditHash(body) }
    this.#insert.run(record.seq, record.ts, record.user ?? null, canonicalJson(record))
    this.#head = { seq: record.seq, hash: record.hash }
    return record
  }

  head(): AuditHead {
    return { ...this.#head }
  }

  /** Records after `after`, oldest first, at most `limit`; optionally only from `since` (ms) on and of one user. */
  page(after: number, limit: number, filter: { since?: number; user?: string } = {}): AuditPage {
    const { since, user } = filter
    const rows = (
      since !== undefined && user !== undefined
        ? this.#pageBoth.all(after, since, user, limit)
        : since !== undefined
          ? this.#pageSince.all(after, since, limit)
          : user !== undefined
            ? this.#pageUser.all(after, user, limit)
            : this.#page.all(after, limit)
    ) as Array<{ seq: number; body: string }>
    const records = rows.map(parseRow)
    return { records, next: rows.length === limit ? rows[rows.length - 1]!.seq : null, head: this.head() }
  }

  /** Every record in order, page by page: what an offline verify reads. */
  *all(pageSize = 1000): Generator<AuditRecord> {
    let after = 0
    for (;;) {
      const page = this.page(after, pageSize)
      yield* page.records
      if (page.next === null) return
      after = page.next
    }
  }

  /** Removes up to `limit` records older than `before` (ms), oldest first, never the newest; returns how many. */
  prune(before: number, limit = 10_000): number {
    const rows = this.#prune.all(before, limit) as Array<{ seq: number; body: string }>
    const last = rows.at(-1)
    if (!last) return 0
    // The chain says what it lost: a verifier accepts a chain that starts past record 1 only
    // when a later record of it names the last record removed and its hash.
    const upTo = { upTo: last.seq, hash: parseRow(last).hash }
    this.#db.transaction(() => {
      this.#deleteUpTo.run(last.seq)
      this.append({ kind: 'audit.pruned', detail: upTo })
    })()
    return rows.length
  }

  close(): void {
    this.#db.close()
  }
}

/**
 * A stored record as it reads back. One edited into something that is not a record is shown
 * as an empty one whose hash cannot match, so the verifier names its seq.
 */
function parseRow(row: { seq: number; body: string }): AuditRecord {
  try {
    const parsed = AuditRecord.safeParse(JSON.parse(row.body))
    if (parsed.success) return parsed.data
  } catch {
    // Falls through to the unreadable record.
  }
  return { seq: row.seq, ts: 0, queen: '', kind: 'refused', detail: { unreadable: true }, prev: '', hash: '' }
}
