import { expect } from 'vitest'
import { type EventOf, FINAL_STATES, type JobEvent } from '@apiary/shared'

/** The stream's last event, which must be `job.finished`. */
export function finished(events: JobEvent[]): EventOf<'job.finished'> {
  const fin = events.at(-1)
  if (fin?.kind !== 'job.finished') throw new Error(`stream did not end with job.finished: ${fin?.kind}`)
  return fin as EventOf<'job.finished'>
}

/** Every target ends in exactly one final state, and the counts add up to the targets. */
export function expectAccounted(events: JobEvent[], targets: string[]): void {
  const fin = finished(events)
  const sum = Object.entries(fin.counts)
    .filter(([s]) => (FINAL_STATES as readonly string[]).includes(s))
    .reduce((n, [, c]) => n + c, 0)
  expect(sum).toBe(targets.length)
  const ends = events.filter((e) => e.kind === 'node.finished').map((e) => (e as EventOf<'node.finished'>).node)
  expect([...ends].sort()).toEqual([...targets].sort())
}
