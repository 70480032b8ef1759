import { Writable } from 'node:stream'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createLogger } from './log.ts'
import { warnRateLimited } from './rate-limit.ts'

describe('rate-limited warnings', () => {
  afterEach(() => vi.restoreAllMocks())

  it('logs a flood as one line per interval, saying how many more came', () => {
    const lines: Array<Record<string, unknown>> = []
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>)
        cb()
      },
    })
    const log = createLogger({ component: 't', level: 'warn', destination: sink })
    let now = 1_000_000
    vi.spyOn(Date, 'now').mockImplementation(() => now)
    for (let i = 0; i < 30_000; i++) warnRateLimited(log, 'dropped a message', { subject: `s.${i}` })
    now += 10_000
    warnRateLimited(log, 'dropped a message', { subject: 'later' })
    warnRateLimited(log, 'another kind', { subject: 'x' })
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        expect(lines.map((l) => [l.msg, l.subject, l.moreSinceLast])).toEqual([
          ['dropped a message', 's.0', undefined],
          ['dropped a message', 'later', 29_999],
          ['another kind', 'x', undefined],
        ])
        resolve()
      }),
    )
  })
})
