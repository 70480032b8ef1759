import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createLogger } from '../runtime/log.ts'
import { type BusMessage, decode, runHandler, subjectMatches } from './bus.ts'

/** A logger whose JSON lines land in an array; `nextLine()` resolves when one is written. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = []
  let waiters: Array<() => void> = []
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>)
      const w = waiters
      waiters = []
      for (const resolve of w) resolve()
      done()
    },
  })
  // pino writes synchronously to a plain Writable, so lines are there right after the call.
  return {
    log: createLogger({ component: 'test', level: 'debug', destination }),
    lines,
    nextLine: () => new Promise<void>((resolve) => waiters.push(resolve)),
  }
}

const msg = (data: unknown, subject = 'apiary.events.jabc123'): BusMessage => ({
  subject,
  data,
  expectsReply: false,
  respond: () => undefined,
})

describe('subjectMatches', () => {
  it.each([
    ['a.b.c', 'a.b.c', true],
    ['a.b.c', 'a.b', false],
    ['a.b', 'a.b.c', false],
    ['a.*.c', 'a.x.c', true],
    ['a.*.c', 'a.x.y.c', false],
    ['a.*', 'a', false],
    ['*', 'a', true],
    ['*', 'a.b', false],
    ['a.>', 'a.b', true],
    ['a.>', 'a.b.c.d', true],
    ['a.>', 'a', false],
    ['>', 'a', true],
    ['>', 'a.b', true],
    ['a.*.>', 'a.b.c', true],
    ['a.*.>', 'a.b', false],
    ['a.b', 'a.bc', false],
    ['a.b', 'ab.b', false],
  ])('%s against %s → %s', (pattern, subject, expected) => {
    expect(subjectMatches(pattern, subject)).toBe(expected)
  })
})

describe('decode', () => {
  const Schema = z.object({ jobId: z.string(), nested: z.object({ n: z.number() }) })

  it('returns the parsed body when it fits', () => {
    const { log, lines } = capturingLogger()
    expect(decode(Schema, msg({ jobId: 'j1', nested: { n: 1 } }), log)).toEqual({ jobId: 'j1', nested: { n: 1 } })
    expect(lines).toEqual([])
  })

  it('returns undefined and logs the subject and the dotted field when it does not', () => {
    const { log, lines } = capturingLogger()
    expect(decode(Schema, msg({ jobId: 'j1', nested: { n: 'one' } }, 'apiary.events.j1'), log)).toBeUndefined()
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ subject: 'apiary.events.j1', field: 'nested.n', msg: 'dropped a malformed message' })
  })

  it('copes with a non-object body', () => {
    const { log, lines } = capturingLogger()
    expect(decode(Schema, msg(null), log)).toBeUndefined()
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ field: '' })
  })
})

describe('runHandler', () => {
  it('logs a throw instead of letting it escape', () => {
    const { log, lines } = capturingLogger()
    expect(() =>
      runHandler(
        () => {
          throw new Error('boom')
        },
        msg({}, 's.1'),
        log,
      ),
    ).not.toThrow()
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ subject: 's.1', msg: 'message handler failed' })
  })

  it('logs a rejection instead of leaving it unhandled', async () => {
    const { log, lines, nextLine } = capturingLogger()
    const logged = nextLine()
    runHandler(() => Promise.reject(new Error('async boom')), msg({}, 's.2'), log)
    // An unhandled rejection would fail the run; a missing log line would hang here until the 5 s timeout.
    await logged
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ subject: 's.2', msg: 'message handler failed' })
  }, 5000)
})
