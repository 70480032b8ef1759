import type { Context } from 'hono'
import { stream } from 'hono/streaming'
import type { Logger } from '@apiary/shared'
import type { EventFeed } from '../jobs/event-log.ts'
import type { JobStore, StoredEvent } from '../store/store.ts'

export interface SseOptions {
  keepaliveMs: number
  /** Events read from the store per page. */
  pageSize: number
  /** Ends the stream: the caller's token stopped being valid (rotated or revoked). */
  signal?: AbortSignal
}

/**
 * Streams a job's events as SSE. The store is the source of truth: a live event only wakes the
 * reader, which then reads everything after the last id it sent. Replays, resumes and live
 * tails are one loop, nothing is held per client but a cursor, and a slow client slows only
 * itself (every write is awaited). `opts.signal` ends it, as a client that went away would.
 */
export function streamJob(c: Context, deps: { store: JobStore; events: EventFeed; log: Logger }, jobId: string, after: number, output: boolean, opts: SseOptions) {
  c.header('content-type', 'text/event-stream; charset=utf-8')
  c.header('cache-control', 'no-cache, no-transform')
  c.header('x-accel-buffering', 'no')
  return stream(c, async (s) => {
    let cursor = after
    let wake: (() => void) | undefined
    let dirty = true
    const unlisten = deps.events.listen(jobId, () => {
      dirty = true
      wake?.()
    })
    s.onAbort(() => wake?.())
    const revoked = () => {
      wake?.()
      // A writer blocked on a slow client is released too.
      void s.close()
    }
    opts.signal?.addEventListener('abort', revoked, { once: true })
    const keepalive = setInterval(() => {
      void s.write(': keepalive\n\n')
    }, opts.keepaliveMs)
    try {
      await s.write(': apiary event stream\n\n')
      for (;;) {
        if (s.aborted || opts.signal?.aborted) return
        if (!dirty) {
          await new Promise<void>((resolve) => (wake = resolve))
          wake = undefined
          continue
        }
        dirty = false
        let finished = false
        for (;;) {
          const page = deps.store.eventsAfter(jobId, cursor, opts.pageSize, { output })
          if (page.length > 0) {
            // One write per page, not per event: a 1,000-node job is a few writes, not a thousand.
            await s.write(page.map(frame).join(''))
            if (s.aborted) return
            cursor = page[page.length - 1]!.seq
            if (page.some((ev) => ev.kind === 'job.finished')) finished = true
          }
          if (page.length < opts.pageSize) break
        }
        if (finished) return
        // Resumed after job.finished: nothing more will come.
        const job = deps.store.jobProgress(jobId)
        if (!job || (job.state !== 'running' && cursor >= job.lastSeq)) return
      }
    } finally {
      clearInterval(keepalive)
      opts.signal?.removeEventListener('abort', revoked)
      unlisten()
    }
  }, async (err) => {
    deps.log.error({ err, jobId }, 'event stream failed')
  })
}

/** The stored JSON text goes out as is: no parse and stringify per event. */
function frame(ev: StoredEvent): string {
  return `id: ${ev.seq}\nevent: ${ev.kind}\ndata: ${ev.body}\n\n`
}
