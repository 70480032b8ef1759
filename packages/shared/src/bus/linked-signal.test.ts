import { getEventListeners } from 'node:events'
import { describe, expect, it } from 'vitest'
import { linkedSignal } from './durable.ts'

describe('linkedSignal', () => {
  it('aborts when any of its signals does, at once when one already has', () => {
    const a = new AbortController()
    const b = new AbortController()
    const l = linkedSignal(a.signal, undefined, b.signal)
    expect(l.signal.aborted).toBe(false)
    b.abort()
    expect(l.signal.aborted).toBe(true)
    expect(linkedSignal(AbortSignal.abort()).signal.aborted).toBe(true)
  })

  it('hangs one listener on a long-lived signal however many links it has, and a disposed link is not aborted', () => {
    const close = new AbortController()
    const links = Array.from({ length: 10_000 }, () => linkedSignal(close.signal))
    expect(getEventListeners(close.signal, 'abort')).toHaveLength(1)
    links.slice(0, 5000).forEach((l) => l.dispose())
    close.abort()
    expect(links.filter((l) => l.signal.aborted)).toHaveLength(5000)
    expect(links.slice(5000).every((l) => l.signal.aborted)).toBe(true)
  })
})
