import { describe, expect, it } from 'vitest'
import { SlidingWindow } from './window.ts'

describe('SlidingWindow', () => {
  it('starts at most `size` and one more for each finish, never more', () => {
    const started: number[] = []
    const w = new SlidingWindow([1, 2, 3, 4, 5], 2, (n) => started.push(n))
    w.pump()
    expect(started).toEqual([1, 2])
    expect(w.inFlight).toBe(2)
    expect(w.finish(2)).toBe(true)
    expect(started).toEqual([1, 2, 3])
    expect(w.finish(2)).toBe(false)
    expect(w.inFlight).toBe(2)
    w.finish(1)
    w.finish(3)
    w.finish(4)
    expect(started).toEqual([1, 2, 3, 4, 5])
    expect(w.done).toBe(false)
    w.finish(5)
    expect(w.done).toBe(true)
  })

  it('stop() returns what never started and starts nothing more', () => {
    const started: string[] = []
    const w = new SlidingWindow(['a', 'b', 'c', 'd'], 1, (n) => started.push(n))
    w.pump()
    expect(w.stop()).toEqual(['b', 'c', 'd'])
    w.finish('a')
    expect(started).toEqual(['a'])
    expect(w.done).toBe(true)
  })
})
