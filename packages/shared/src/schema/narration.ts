import type { FinalState } from './job.ts'
import type { WireEventOf } from './event.ts'

/** Output as the watcher reads it: the node on every line (`web-1 | …`). */
export function prefixLines(node: string, data: string): string {
  const body = data.endsWith('\n') ? data.slice(0, -1) : data
  return body
    .split('\n')
    .map((l) => `${node} | ${l}`)
    .join('\n')
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
  const cause = r.cause && r.state !== 'ok' ? `: ${r.cause}` : ''
  return `${node}: ${r.state}${cause} (${parts.join(', ')})`
}

/** The end of a node that never ran (offline, no hive, skipped, lost): no exit, no output. */
export function notRunEvent(jobId: string, node: string, state: FinalState, cause: string, ts = Date.now()): WireEventOf<'node.finished'> {
  return {
    jobId,
    ts,
    kind: 'node.finished',
    node,
    state,
    exitCode: null,
    signal: null,
    cause,
    durationMs: null,
    bytes: 0,
    truncated: false,
    digest: null,
    human: `${node}: ${state}: ${cause}`,
  }
}
