import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { EventOf, JobEvent } from '@apiary/shared'
import type { JobClient } from '@apiary/shared/client'
import { EXIT, type Io } from '../cli/context.ts'
import { escapeControls } from '../render/escape.ts'
import { Progress } from '../render/progress.ts'
import { paint, Screen } from '../render/screen.ts'
import { summaryLines } from '../render/summary.ts'

export interface FollowOptions {
  /** Per-node output live, with the node on every line, instead of grouped at the end. */
  noGroup: boolean
  /** Resume after this sequence number. */
  after?: number
  /** Counts known before `after` (reattaching). */
  seed?: { total: number; counts: Record<string, number>; createdAt: number }
  /** Renders a finished node instead of its line (facts). */
  onFinished?: (ev: EventOf<'node.finished'>) => void
  /** Replaces the grouped summary (facts). */
  summary?: (fin: EventOf<'job.finished'>) => Promise<void>
  /** Where the last seen sequence number is kept, so `keeper watch` can resume. */
  cursorDir?: string
}

/**
 * Follows a job's event stream to `job.finished` and returns the exit code its outcome calls
 * for. Text on a terminal: one live progress line, with job-level lines and nodes that are not
 * ok scrolling above it; on a pipe: plain lines. `ndjson`: every event as one JSON line.
 * `json`: nothing while it runs; the caller prints one document at the end.
 */
export async function followJob(client: JobClient, jobId: string, io: Io, opts: FollowOptions, signal: AbortSignal): Promise<{ code: number; fin?: EventOf<'job.finished'> }> {
  const screen = new Screen(io.out, io.tty && io.format === 'text')
  const progress = new Progress(io.color)
  if (opts.seed) progress.seed(opts.seed.total, opts.seed.counts, opts.seed.createdAt)
  let last = opts.after ?? 0
  let fin: EventOf<'job.finished'> | undefined
  const wantOutput = io.format === 'ndjson' || (io.format === 'text' && opts.noGroup)
  try {
    const onReconnect = reconnectNotice(io, screen)
    for await (const ev of client.stream(jobId, { output: wantOutput, signal, ...(opts.after ? { after: opts.after } : {}), ...(onReconnect ? { onReconnect } : {}) })) {
      last = ev.seq
      progress.add(ev)
      if (ev.kind === 'job.finished') fin = ev
      if (io.format === 'ndjson') await io.out.line(JSON.stringify(ev))
      else if (io.format === 'text') await printText(ev, io, screen, opts)
      if (io.format === 'text' && io.tty) await screen.status(progress.line(), ev.kind === 'job.submitted')
    }
    // The last count stays on screen as a line of its own.
    if (fin && io.tty && io.format === 'text') await screen.line(progress.line())
  } finally {
    await screen.clear()
    if (!fin && opts.cursorDir) await saveCursor(opts.cursorDir, jobId, last)
  }
  if (!fin) return { code: EXIT.detached }
  if (io.format === 'text') {
    if (opts.summary) await opts.summary(fin)
    else for (const l of await summaryLines(client, fin, io.color)) await io.out.line(l)
  }
  return { code: exitCodeOf(fin), fin }
}

/**
 * In text mode, a line on stderr each time a lost stream is tried again, on which queen and why;
 * the progress line (stdout, on a terminal) is taken down first and comes back with the next event.
 */
export function reconnectNotice(io: Io, screen?: Screen): ((queen: string, why: string) => Promise<void>) | undefined {
  if (io.format !== 'text') return undefined
  return async (queen, why) => {
    await screen?.clear()
    // `why` may carry a queen's words.
    await io.err.line(`keeper: reconnecting to ${queen}… (lost ${escapeControls(why)})`)
  }
}

async function printText(ev: JobEvent, io: Io, screen: Screen, opts: FollowOptions) {
  switch (ev.kind) {
    case 'job.finished':
    case 'node.started':
      return // the summary and the progress line say it
    case 'node.output': {
      // What nodes and the queen wrote is escaped on a pipe too: `less -R` or a log viewer acts on it.
      const body = ev.data.endsWith('\n') ? ev.data.slice(0, -1) : ev.data
      const node = escapeControls(ev.node)
      for (const l of escapeControls(body, { keepNewlines: true }).split('\n')) await screen.line(`${node} | ${l}`)
      return
    }
    case 'node.finished':
      if (opts.onFinished) return opts.onFinished(ev)
      // On a terminal only nodes that are not ok scroll by; on a pipe every node has its line.
      if (io.tty && !opts.noGroup && ev.state === 'ok') return
      return screen.line(paint(io.color, ev.state, escapeControls(ev.human)))
    default:
      return screen.line(escapeControls(ev.human))
  }
}

/** 0 all ok; 3 cancelled or any node timed out; 1 anything else not ok. */
export function exitCodeOf(fin: EventOf<'job.finished'>): number {
  if (fin.state === 'cancelled' || (fin.counts.timeout ?? 0) > 0) return EXIT.cancelled
  return fin.state === 'ok' ? EXIT.ok : EXIT.notOk
}

export async function saveCursor(dir: string, jobId: string, seq: number): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await writeFile(join(dir, jobId), `${seq}\n`, { mode: 0o600 })
}

export async function readCursor(dir: string, jobId: string): Promise<number> {
  const text = await readFile(join(dir, jobId), 'utf8').catch(() => '0')
  const n = Number(text.trim())
  return Number.isSafeInteger(n) && n >= 0 ? n : 0
}
