import { describe, expect, it } from 'vitest'
import { EventCursor } from './event-cursor.ts'

describe('EventCursor', () => {
  it('delivers the next event, drops what was delivered, and calls anything further a gap', () => {
    const c = new EventCursor(0, true)
    expect(c.offer(1)).toEqual({ type: 'deliver' })
    c.delivered(1)
    expect(c.offer(1)).toEqual({ type: 'repeat' })
    expect(c.offer(2)).toEqual({ type: 'deliver' })
    c.delivered(2)
    expect(c.offer(5)).toEqual({ type: 'gap', from: 3, to: 4 })
    // A resumed stream that starts over repeats nothing.
    c.reconnected()
    expect([1, 2].map((s) => c.offer(s).type)).toEqual(['repeat', 'repeat'])
    expect(c.offer(3)).toEqual({ type: 'deliver' })
  })

  it('without output, where chunks are skipped by design, checks only the first event of a connection', () => {
    const c = new EventCursor(10, false)
    expect(c.offer(14)).toEqual({ type: 'gap', from: 11, to: 13 })
    c.delivered(14)
    expect(c.offer(20)).toEqual({ type: 'deliver' })
    c.delivered(20)
    c.reconnected()
    expect(c.offer(20)).toEqual({ type: 'repeat' })
    expect(c.offer(22)).toEqual({ type: 'gap', from: 21, to: 21 })
    expect(c.offer(21)).toEqual({ type: 'deliver' })
    c.delivered(21)
    expect(c.offer(30)).toEqual({ type: 'deliver' })
  })
})
