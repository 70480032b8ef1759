import { silentLogger } from '@apiary/shared/runtime'
import { describe, expect, it } from 'vitest'
import { Capacity, type CapacityOptions, type Schedule, type Tracked } from './capacity.ts'

/** Timers that fire only when the test says so. */
const manualTimers = () => {
  const pending = new Set<{ ms: number; fn: () => void }>()
  const schedule: Schedule = (ms, fn) => {
    const t = { ms, fn }
    pending.add(t)
    return () => pending.delete(t)
  }
  const fireAll = () => {
    for (const t of [...pending]) {
      pending.delete(t)
      t.fn()
    }
  }
  return { schedule, pending, fireAll }
}

const setup = (o: Partial<CapacityOptions> = {}) => {
  const timers = manualTimers()
  const closed: Tracked[] = []
  const cap = new Capacity<Tracked>(
    { maxPerHost: 2, maxTotal: 100, channelsPerConnection: 2, idleMs: 1000, ...o },
    { close: (c) => closed.push(c), log: silentLogger(), schedule: timers.schedule },
  )
  let id = 0
  /** A connection counted against the caps, connecting; `up` makes it ready. */
  const conn = (key: string, up = true): Tracked => {
    const c: Tracked = { id: ++id, key, state: 'connecting', retired: false, slots: 0 }
    cap.add(c)
    if (up) cap.up(c)
    return c
  }
  return { cap, conn, closed, timers }
}

describe('Capacity', () => {
  it('leases the busiest ready connection with room, then a connecting one; never a full or retired one', () => {
    const { cap, conn, closed } = setup({ maxPerHost: 3 })
    const c = conn('h', false)
    const a = conn('h')
    const b = conn('h')
    cap.reserve(c)
    cap.reserve(a)
    expect(cap.pick('h')).toBe(a)
    cap.reserve(a)
    // a is full (2 channels): an idle ready one beats a busier one still connecting.
    expect(cap.pick('h')).toBe(b)
    cap.reserve(b)
    cap.release(b, true)
    expect(closed).toEqual([b])
    expect(b.state).toBe('dead')
    expect(cap.pick('h')).toBe(c)
    expect(cap.pick('other')).toBeUndefined()
  })

  it('keeps to the per-host cap; a connection that died frees its place', () => {
    const { cap, conn } = setup({ maxPerHost: 2 })
    const a = conn('h')
    conn('h', false)
    expect(cap.makeRoom('h')).toBe(false)
    expect(cap.makeRoom('other')).toBe(true)
    cap.dead(a)
    expect(cap.makeRoom('h')).toBe(true)
  })

  it('at the total cap closes the longest-idle connection of any host, and never a busy one', () => {
    const { cap, conn, closed } = setup({ maxTotal: 2 })
    const a = conn('h1')
    const b = conn('h2')
    // a was idle first, but is taken and handed back: b is now the longest idle.
    cap.reserve(a)
    cap.release(a)
    expect(cap.makeRoom('h3')).toBe(true)
    expect(closed).toEqual([b])
    expect(b.state).toBe('dead')
    cap.reserve(a)
    conn('h3', false)
    expect(cap.makeRoom('h4')).toBe(false)
    expect(closed).toEqual([b])
  })

  it('closes a connection once it has been unused for the idle time', () => {
    const { cap, conn, closed, timers } = setup()
    const a = conn('h')
    expect([...timers.pending].map((t) => t.ms)).toEqual([1000])
    cap.reserve(a)
    // Leased before the idle time was up: its timer is gone.
    expect(timers.pending.size).toBe(0)
    cap.release(a)
    expect(closed).toEqual([])
    timers.fireAll()
    expect(closed).toEqual([a])
    expect(cap.usage()).toEqual({ connections: 0, channels: 0 })
  })

  it('closes a retired connection when its last lease is back, not before', () => {
    const { cap, conn, closed, timers } = setup()
    const a = conn('h')
    cap.reserve(a)
    cap.reserve(a)
    cap.release(a, true)
    expect(closed).toEqual([])
    expect(cap.pick('h')).toBeUndefined()
    cap.release(a)
    expect(closed).toEqual([a])
    expect(timers.pending.size).toBe(0)
  })

  it('wakes waiters on any change; a waiter whose signal aborts leaves with its reason', async () => {
    const { cap, conn } = setup()
    const a = conn('h')
    cap.reserve(a)
    let woke = false
    const waiting = cap.changed(new AbortController().signal).then(() => (woke = true))
    const ac = new AbortController()
    const leaving = cap.changed(ac.signal)
    ac.abort(new Error('gave up'))
    await expect(leaving).rejects.toThrow('gave up')
    expect(woke).toBe(false)
    cap.release(a)
    await waiting
    expect(woke).toBe(true)
  })

  it('counts ready connections and the slots on them; a reservation on a connecting one is not a channel', () => {
    const { cap, conn } = setup()
    const a = conn('h1')
    const b = conn('h2', false)
    cap.reserve(a)
    cap.reserve(a)
    cap.reserve(b)
    expect(cap.usage()).toEqual({ connections: 1, channels: 2 })
    expect(cap.connections()).toEqual([a, b])
  })
})
