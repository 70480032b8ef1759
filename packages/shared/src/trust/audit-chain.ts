import { AUDIT_GENESIS, type AuditRecord } from '../schema/access.ts'
import { digestOf } from './signing.ts'

/** The hash a record must carry: SHA-256 of the canonical JSON of everything in it but `hash`. */
export function auditHash(record: Omit<AuditRecord, 'hash'> & { hash?: string }): string {
  const { hash: _hash, ...rest } = record
  return digestOf(rest)
}

export type ChainBreak =
  | { seq: number; kind: 'hash'; message: string }
  | { seq: number; kind: 'prev'; message: string }
  /** The chain ends before the head its writer reports: records at its end were removed. */
  | { seq: number; kind: 'head'; message: string }
  /** The chain starts past record 1 and no prune record accounts for those before. */
  | { seq: number; kind: 'gap'; message: string }

export interface ChainVerdict {
  intact: boolean
  /** How many records were checked. */
  records: number
  /** The first record checked (1 unless retention pruned those before it); 0 when none. */
  first: number
  /** The last record checked: the head. */
  head: { seq: number; hash: string }
  /** The first break found; the records after it are not judged. */
  broken?: ChainBreak
}

/**
 * Verifies an audit chain record by record, in seq order, as pages arrive: keeper's `audit
 * verify` and `apiary-queen audit verify` run this same code. A record whose hash is not the
 * digest of its content was edited; a record whose `prev` is not the hash of the one before
 * was put there after a removal or a reordering. The first record checked starts the chain: its
 * `prev` is the genesis, or records before it were pruned by retention, which a later
 * `audit.pruned` record naming the last one removed and its hash says.
 *
 * @example
 * const v = new ChainVerifier()
 * for (const r of records) if (!v.push(r)) break
 * v.verdict() // { intact: true, head: { seq: 42, hash: '…' }, … }
 */
export class ChainVerifier {
  #records = 0
  #first = 0
  #last: { seq: number; hash: string } = { seq: 0, hash: AUDIT_GENESIS }
  #broken: ChainBreak | undefined
  /** Records missing before the first checked, until a prune record accounts for them. */
  #gap: { upTo: number; hash: string } | undefined

  /** Checks the next record; false once the chain is broken (later records are not checked). */
  push(record: AuditRecord): boolean {
    if (this.#broken) return false
    const computed = auditHash(record)
    if (computed !== record.hash) {
      this.#broken = { seq: record.seq, kind: 'hash', message: `record ${record.seq}: hash mismatch: its content is not what was hashed (the record was edited)` }
      return false
    }
    if (this.#records > 0 && record.prev !== this.#last.hash) {
      const gap = record.seq - this.#last.seq - 1
      const what = gap > 0 ? `${gap} record${gap === 1 ? '' : 's'} before it removed` : 'records removed or reordered'
      this.#broken = { seq: record.seq, kind: 'prev', message: `record ${record.seq}: prev mismatch: it does not follow record ${this.#last.seq} (${what})` }
      return false
    }
    if (this.#records === 0) {
      this.#first = record.seq
      // A chain that starts past record 1 must say, later, that retention removed those before.
      if (record.seq > 1 || record.prev !== AUDIT_GENESIS) this.#gap = { upTo: record.seq - 1, hash: record.prev }
    }
    if (this.#gap && record.kind === 'audit.pruned' && record.detail.upTo === this.#gap.upTo && record.detail.hash === this.#gap.hash) this.#gap = undefined
    this.#records++
    this.#last = { seq: record.seq, hash: record.hash }
    return true
  }

  verdict(): ChainVerdict {
    const broken: ChainBreak | undefined =
      this.#broken ??
      (this.#gap
        ? { seq: this.#first, kind: 'gap', message: `record ${this.#first}: the chain starts here, and no audit.pruned record says retention removed the ${this.#gap.upTo} before it (they were deleted)` }
        : undefined)
    return { intact: broken === undefined, records: this.#records, first: this.#first, head: { ...this.#last }, ...(broken ? { broken } : {}) }
  }
}

/** The verdict in an operator's words, one line each. */
export function describeVerdict(v: ChainVerdict): string[] {
  const lines: string[] = []
  if (v.first > 1 && v.broken?.kind !== 'gap') lines.push(`chain starts at record ${v.first}; earlier records pruned by retention`)
  if (v.broken) {
    lines.push(`broken: ${v.broken.message}`)
    if (v.records > 0) lines.push(`intact up to record ${v.head.seq} (${v.records} record${v.records === 1 ? '' : 's'} checked)`)
    return lines
  }
  lines.push(v.records === 0 ? 'intact: no records yet' : `intact: ${v.records} record${v.records === 1 ? '' : 's'}, head ${v.head.seq} ${v.head.hash}`)
  return lines
}

/**
 * The verdict against the head the chain's writer reports (the queen's, kept apart from the
 * records): an intact chain that ends before it lost records at its end.
 */
export function againstHead(v: ChainVerdict, reported: { seq: number; hash: string }): ChainVerdict {
  if (!v.intact || (reported.seq === v.head.seq && reported.hash === v.head.hash)) return v
  const message =
    reported.seq > v.head.seq
      ? `the queen's head is record ${reported.seq} but the chain ends at record ${v.head.seq}: records ${v.head.seq + 1}–${reported.seq} were removed`
      : `record ${reported.seq} is not the queen's head ${reported.hash}: the chain was rewritten`
  return { ...v, intact: false, broken: { seq: Math.min(reported.seq, v.head.seq + 1), kind: 'head', message } }
}
