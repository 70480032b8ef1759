import { getEventListeners } from 'node:events'
import { describe, expect, it } from 'vitest'
import { linkedSignal, raceSignals } from './durable.ts'

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

describe('raceSignals', () => {
  it("settles as its promise does, or with the reason of the first signal to abort; one listener per signal however many races", async () => {
    const close = new AbortController()
    const task = new AbortController()
    await expect(raceSignals(Promise.resolve(7), task.signal, undefined, close.signal)).resolves.toBe(7)
    await expect(raceSignals(Promise.reject(new Error('no')), close.signal)).rejects.toThrow('no')
    await expect(raceSignals(new Promise(() => undefined), AbortSignal.abort('already'))).rejects.toBe('already')
    const pending = Array.from({ length: 1000 }, () => raceSignals(new Promise(() => undefined), task.signal, close.signal))
    const settled = await Promise.all(Array.from({ length: 1000 }, () => raceSignals(Promise.resolve(1), task.signal, close.signal)))
    expect(settled).toHaveLength(1000)
    expect(getEventListeners(close.signal, 'abort')).toHaveLength(1)
    expect(getEventListeners(task.signal, 'abort')).toHaveLength(1)
    task.abort('stop')
    expect(await Promise.allSettled(pending)).toEqual(pending.map(() => ({ status: 'rejected', reason: 'stop' })))
  })
})
