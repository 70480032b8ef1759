import { ApiaryError, type AuditRecord, againstHead, ChainVerifier, describeVerdict, MAX_AUDIT_PAGE } from '@apiary/shared'
import { parseDuration } from '@apiary/shared/runtime'
import { defineCommand } from '../cli/command.ts'
import { connectClient, EXIT } from '../cli/context.ts'
import { table } from '../render/output.ts'
import { printJson } from '../render/records.ts'

const USAGE = 'keeper audit [--since DURATION|TIME] [--user U] [--limit N] [-o FORMAT] | keeper audit verify'

/** `--since 2h` (that long ago) or `--since 2026-05-01T10:00:00Z`: ms since the epoch. */
export function sinceOf(text: string, now: number): number {
  try {
    return now - parseDuration(text, '--since')
  } catch {
    const t = Date.parse(text)
    if (Number.isNaN(t)) throw new ApiaryError('invalid_input', `--since: "${text}" is neither a duration (2h, 30m, 7d) nor a time (2026-05-01T10:00:00Z)`, '--since')
    return t
  }
}

/** One line of a record's facts, for the table: `jobId=… nodes=3 risk=safe`. */
function facts(r: AuditRecord): string {
  const parts = Object.entries(r.detail).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
  const line = parts.join(' ')
  return line.length > 300 ? `${line.slice(0, 299)}…` : line
}

/**
 * `keeper audit`: the audit log of the queen it talks to (admin only), and `keeper audit verify`,
 * which reads the whole chain and checks it here, with the same code the queen's offline verify
 * runs: the chain's integrity does not rest on the queen's word. Several `--queen` URLs: the
 * first one is read (each queen keeps a chain of its own).
 */
export const audit = defineCommand({
  name: 'audit',
  summary: 'the audit log (admin): who did what, from where; audit verify checks its hash chain',
  usage: USAGE,
  options: {
    since: { type: 'string', value: 'DURATION|TIME', help: 'records from this long ago (2h, 7d) or this time (ISO 8601) on' },
    user: { type: 'string', value: 'USER', help: 'only records of this user' },
    limit: { type: 'int', min: 1, max: 1_000_000, default: '1000', help: 'at most this many records, oldest first' },
  },
  args: 'command',
  async run({ command, values: v, globals, io, client }) {
    const [sub, ...more] = command
    if ((sub !== undefined && sub !== 'verify') || more.length > 0) {
      throw new ApiaryError('invalid_input', `keeper audit: unexpected "${sub === 'verify' ? more[0] : sub}" (usage: ${USAGE})`, 'command')
    }
    // One queen: each keeps its own chain.
    const first = globals.queen.split(',')[0]!.trim()
    const c = first === globals.queen ? await client() : await connectClient({ ...globals, queen: first }, io.env)
    if (sub === 'verify') {
      if (v.since !== undefined || v.user !== undefined) throw new ApiaryError('invalid_input', 'keeper audit verify reads the whole chain: it takes no --since or --user', 'flags')
      const verifier = new ChainVerifier()
      let after = 0
      let head = { seq: 0, hash: '' }
      for (;;) {
        const page = await c.auditPage({ after, limit: MAX_AUDIT_PAGE })
        head = page.head
        if (!page.records.every((r) => verifier.push(r)) || page.next === null) break
        after = page.next
      }
      // The queen keeps its head apart from the records: records cut off the end show there.
      const verdict = againstHead(verifier.verdict(), head)
      if (io.format !== 'text') await io.out.line(JSON.stringify({ queen: first, ...verdict }))
      else for (const l of describeVerdict(verdict)) await io.out.line(l)
      return verdict.intact ? EXIT.ok : EXIT.notOk
    }
    const since = v.since === undefined ? undefined : sinceOf(v.since, Date.now())
    const records: AuditRecord[] = []
    let after = 0
    while (records.length < v.limit) {
      const page = await c.auditPage({ after, limit: Math.min(MAX_AUDIT_PAGE, v.limit - records.length), ...(since !== undefined ? { since } : {}), ...(v.user ? { user: v.user } : {}) })
      records.push(...page.records)
      if (page.next === null) break
      after = page.next
    }
    if (await printJson(io, 'records', records)) return EXIT.ok
    if (records.length === 0) {
      await io.out.line('no audit records match')
      return EXIT.ok
    }
    const rows = records.map((r) => [String(r.seq), new Date(r.ts).toISOString(), r.queen, r.user ?? '', r.source ?? '', r.kind, facts(r)])
    for (const l of table(['SEQ', 'TIME', 'QUEEN', 'USER', 'SOURCE', 'KIND', 'DETAIL'], rows)) await io.out.line(l)
    return EXIT.ok
  },
})
