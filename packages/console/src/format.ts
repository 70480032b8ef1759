import type { FinalState, JobSummary, NodeState } from '@apiary/shared'

/** Every node state, in the order the console lists them. */
export const STATES = ['ok', 'failed', 'error', 'timeout', 'lost', 'cancelled', 'skipped', 'running', 'pending'] as const satisfies readonly NodeState[]
export type State = (typeof STATES)[number]

/**
 * The not-ok states spend a job's error budget and are what "Rerun failed" takes (the queen's
 * `NOT_OK_STATES`, restated: the contract's door does not bundle for a browser, its types do).
 */
export const NOT_OK = ['failed', 'error', 'timeout', 'lost'] as const satisfies readonly FinalState[]

/** A state readable without colour: each has a symbol beside its word. */
export const SYMBOL: Record<State, string> = {
  ok: '✓',
  failed: '✗',
  error: '!',
  timeout: '⌛',
  lost: '?',
  cancelled: '⊘',
  skipped: '↷',
  running: '▶',
  pending: '·',
}

const int = new Intl.NumberFormat('en-US')
/** 9950 → "9,950". */
export const count = (n: number): string => int.format(n)

export const plural = (n: number, one: string, many = `${one}s`): string => `${count(n)} ${n === 1 ? one : many}`

/** 850 → "850 ms", 12_300 → "12.3 s", 754_000 → "12 min 34 s". */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–'
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`
  const s = Math.round(ms / 1000)
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
}

/** A moment relative to `now`: "12 s ago", "3 min ago", else the local date and time. */
export function ago(ts: number | null | undefined, now: number): string {
  if (ts === null || ts === undefined || ts <= 0) return 'never'
  const d = Math.max(0, now - ts)
  if (d < 60_000) return `${Math.round(d / 1000)} s ago`
  if (d < 3_600_000) return `${Math.round(d / 60_000)} min ago`
  return new Date(ts).toLocaleString()
}

/** The operation in one line, as an operator typed it. */
export function describeOperation(op: JobSummary['operation']): string {
  if (op.type !== 'exec') return op.type
  if (op.shell) return op.command ?? ''
  return (op.argv ?? []).map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')
}

/** Jobs by the counts they carry: how many ended ok, how many not ok. */
export function okNotOk(counts: Partial<Record<NodeState, number>>): { ok: number; notOk: number } {
  let notOk = 0
  for (const s of NOT_OK) notOk += counts[s] ?? 0
  return { ok: counts.ok ?? 0, notOk }
}
