import { type EventOf, type JobClient, type JobEvent } from '@apiary/shared'
import { EXIT, type Io } from '../cli/context.ts'
import { SummaryBuilder } from '../render/summary.ts'

export interface FollowOptions {
  json: boolean
  /** Print node output as it arrives (text mode). */
  output: boolean
  after?: number
  /** Render a finished node (facts prints a table row instead of the line). */
  onFinished?: (ev: EventOf<'node.finished'>) => Promise<void>
  /** Replaces the grouped summary at the end. */
  summary?: (fin: EventOf<'job.finished'>) => Promise<void>
}

/**
 * Follows a job's event stream to `job.finished`, printing each event's `human` line (or the
 * event as JSON), then the summary. Returns the exit code the job's outcome calls for.
 */
export async function followJob(client: JobClient, jobId: string, io: Io, opts: FollowOptions, signal: AbortSignal): Promise<number> {
  const summary = new SummaryBuilder()
  for await (const ev of client.stream(jobId, { output: opts.output || opts.json, signal, ...(opts.after ? { after: opts.after } : {}) })) {
    summary.add(ev)
    if (opts.json) await io.out.line(JSON.stringify(ev))
    else await printHuman(ev, io, opts)
  }
  const fin = summary.finished
  if (!fin) return EXIT.detached
  if (!opts.json) {
    if (opts.summary) await opts.summary(fin)
    else for (const l of summary.lines()) await io.out.line(l)
  }
  return exitCodeOf(fin)
}

async function printHuman(ev: JobEvent, io: Io, opts: FollowOptions) {
  switch (ev.kind) {
    case 'job.finished':
      return // the summary prints it
    case 'node.output':
      if (opts.output) await io.out.line(ev.human)
      return
    case 'node.finished':
      if (opts.onFinished) return opts.onFinished(ev)
      return io.out.line(ev.human)
    default:
      return io.out.line(ev.human)
  }
}

/** 0 all ok; 3 cancelled or any node timed out; 1 anything else not ok. */
export function exitCodeOf(fin: EventOf<'job.finished'>): number {
  if (fin.state === 'cancelled' || (fin.counts.timeout ?? 0) > 0) return EXIT.cancelled
  return fin.state === 'ok' ? EXIT.ok : EXIT.notOk
}
