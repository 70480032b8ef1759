import { describe, expect, it } from 'vitest'
import { SlicedQueue } from './sliced-queue.ts'

/** A queue on a fake clock: each item takes `costMs`; scheduled slices wait until `step()`. */
function setup(costMs: number, budgetMs = 8) {
  let t = 0
  const tasks: Array<() => void> = []
  const ran: number[] = []
  const slices: number[][] = []
  let current: number[] = []
  const q = new SlicedQueue<number>({
    run: (n) => {
      t += costMs
      ran.push(n)
      current.push(n)
    },
    after: () => {
      slices.push(current)
      current = []
    },
    budgetMs,
    now: () => t,
    schedule: (fn) => void tasks.push(fn),
  })
  const step = () => tasks.shift()?.()
  return { q, ran, slices, tasks, step }
}

describe('SlicedQueue', () => {
  it('runs a burst in slices that each fit the budget, one task per slice', () => {
    const { q, slices, tasks, step } = setup(1)
    for (let i = 0; i < 20; i++) q.push(i)
    expect(tasks).toHaveLength(1)
    step()
    expect(slices).toEqual([[0, 1, 2, 3, 4, 5, 6, 7]])
    expect(q.pending).toBe(12)
    expect(tasks).toHaveLength(1)
    step()
    step()
    expect(slices.map((s) => s.length)).toEqual([8, 8, 4])
    expect(q.pending).toBe(0)
    expect(tasks).toHaveLength(0)
  })

  it('runs at least one item per slice, however slow', () => {
    const { q, slices, step } = setup(50)
    q.push(1)
    q.push(2)
    step()
    step()
    expect(slices).toEqual([[1], [2]])
  })

  it('keeps order across slices and pushes made while it waits', () => {
    const { q, ran, step } = setup(3)
    q.push(1)
    q.push(2)
    q.push(3)
    q.push(4)
    step()
    q.push(5)
    step()
    expect(ran).toEqual([1, 2, 3, 4, 5])
  })

  it('drops what is queued once stopped', () => {
    const { q, ran, step, tasks } = setup(1)
    for (let i = 0; i < 20; i++) q.push(i)
    step()
    q.stop()
    q.push(99)
    while (tasks.length > 0) step()
    expect(ran).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
  })
})
