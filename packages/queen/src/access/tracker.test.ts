import { describe, expect, it } from 'vitest'
import { AccessTracker, FAILURE_WINDOW_MS, LOGIN_WINDOW_MS, OTHER_SOURCES } from './tracker.ts'

describe('AccessTracker', () => {
  it('counts the first request of a user from an address within an hour as a login', () => {
    let now = 0
    const t = new AccessTracker(() => now)
    expect(t.seen('alice', '10.0.0.1')).toBe(true)
    now += 1000
    expect(t.seen('alice', '10.0.0.1')).toBe(false)
    expect(t.seen('alice', '10.0.0.2')).toBe(true)
    expect(t.seen('bob', '10.0.0.1')).toBe(true)
    now += LOGIN_WINDOW_MS
    expect(t.seen('alice', '10.0.0.1')).toBe(true)
  })

  it('forgets the longest idle pair past its bound, which then logs in again', () => {
    let now = 0
    const t = new AccessTracker(() => now, { maxLoginPairs: 2 })
    t.seen('a', 's')
    t.seen('b', 's')
    t.seen('a', 's')
    t.seen('c', 's') // b was idle longest
    now += 1
    expect(t.seen('a', 's')).toBe(false)
    expect(t.seen('b', 's')).toBe(true)
  })

  it('folds failures into one window per address per minute, with a count', () => {
    let now = 0
    const t = new AccessTracker(() => now)
    for (let i = 0; i < 500; i++) t.failed('10.0.0.9', i % 2 ? 'unknown token' : 'no bearer token')
    t.failed('10.0.0.8', 'unknown token')
    expect(t.due()).toEqual([])
    now += FAILURE_WINDOW_MS
    const due = t.due()
    expect(due).toEqual([
      { source: '10.0.0.9', count: 500, first: 0, last: 0, reasons: ['no bearer token', 'unknown token'] },
      { source: '10.0.0.8', count: 1, first: 0, last: 0, reasons: ['unknown token'] },
    ])
    expect(t.due()).toEqual([])
    t.failed('10.0.0.9', 'unknown token')
    expect(t.due(true)).toHaveLength(1)
  })

  it('tracks at most maxSources addresses apart; the rest share one count', () => {
    const t = new AccessTracker(() => 0, { maxSources: 3 })
    for (let i = 0; i < 1000; i++) t.failed(`10.1.${i >> 8}.${i & 255}`, 'unknown token')
    expect(t.trackedSources).toBe(4)
    const due = t.due(true)
    expect(due.map((w) => w.source)).toEqual(['10.1.0.0', '10.1.0.1', '10.1.0.2', OTHER_SOURCES])
    expect(due.reduce((n, w) => n + w.count, 0)).toBe(1000)
  })
})
