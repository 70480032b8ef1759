import { type FinalState, MAX_CAUSE } from './job.ts'
import { MAX_HUMAN, MAX_OUTPUT_HUMAN, type WireEvent, type WireEventOf } from './event.ts'

/**
 * `text` cut to at most `max` characters, ending in `…` when cut (never in half a surrogate
 * pair): how producers keep a cause or a line within what the queen takes.
 * @example clip('program not found: ' + name, MAX_CAUSE)
 */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text
  let end = max - 1
  const last = text.charCodeAt(end - 1)
  if (last >= 0xd800 && last <= 0xdbff) end--
  return `${text.slice(0, end)}…`
}

/**
 * Output as the watcher reads it: the node on every line (`web-1 | …`), cut at
 * `MAX_OUTPUT_HUMAN` (a chunk of empty lines is mostly prefixes; `data` keeps every byte).
 */
export function prefixLines(node: string, data: string): string {
  const body = data.endsWith('\n') ? data.slice(0, -1) : data
  let out = ''
  for (let start = 0; start <= body.length; ) {
    const nl = body.indexOf('\n', start)
    const end = nl === -1 ? body.length : nl
    const line = `${start === 0 ? '' : '\n'}${node} | ${body.slice(start, end)}`
    if (out.length + line.length > MAX_OUTPUT_HUMAN) return clip(out + line, MAX_OUTPUT_HUMAN)
    out += line
    start = end + 1
  }
  return out
}

/** The line for a node that ran: `web-1: failed: … (exit 1, 12 ms, output cut at …)`. */
export function finishedLine(
  node: string,
  r: { state: FinalState; exitCode: number | null; signal: string | null; cause: string | null; truncated: boolean; bytes: number },
  ms: number,
  capBytes: number,
): string {
  const parts: string[] = []
  if (r.exitCode !== null) parts.push(`exit ${r.exitCode}`)
  if (r.signal) parts.push(r.signal)
  parts.push(ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`)
  if (r.truncated) parts.push(`output cut at ${capBytes} of ${r.bytes} bytes`)
  const cause = r.cause && r.state !== 'ok' ? `: ${clip(r.cause, MAX_CAUSE)}` : ''
  return clip(`${node}: ${r.state}${cause} (${parts.join(', ')})`, MAX_HUMAN)
}

/** The end of a node that never ran (offline, no hive, skipped, lost): no exit, no output. */
export function notRunEvent(jobId: string, node: string, state: FinalState, cause: string, ts = Date.now()): WireEventOf<'node.finished'> {
  const why = clip(cause, MAX_CAUSE)
  return {
    jobId,
    ts,
    kind: 'node.finished',
    node,
    state,
    exitCode: null,
    signal: null,
    cause: why,
    durationMs: null,
    bytes: 0,
    truncated: false,
    digest: null,
    human: clip(`${node}: ${state}: ${why}`, MAX_HUMAN),
  }
}

/** A node's start as its producer says it. */
export function startedEvent(jobId: string, node: string, ts: number, step?: number): WireEventOf<'node.started'> {
  return { jobId, ts, kind: 'node.started', node, human: `${node}: started`, ...(step === undefined ? {} : { step }) }
}

/**
 * A node's end that carries its start (`startedAt`: the worker held the start and the task
 * ended first), as the two events it stands for, the start one step before; any other event
 * as it is. Only a numbered end past the first step has a step left for its start: on another
 * (a hive's verdict, an unnumbered `lost`) `startedAt` is dropped.
 *
 * @example for (const e of unfoldStart(ev)) run.onEvent(e, now)
 */
export function unfoldStart(ev: WireEvent): WireEvent[] {
  if (ev.kind !== 'node.finished' || ev.startedAt === undefined) return [ev]
  const { startedAt, ...end } = ev
  if (end.step === undefined || end.step < 2) return [end]
  return [startedEvent(ev.jobId, ev.node, startedAt, end.step - 1), end]
}
