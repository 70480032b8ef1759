import { describe, expect, it } from 'vitest'
import { ShareAttempts } from './attempts.ts'

const K = 'j1/0'

describe('ShareAttempts', () => {
  it('takes the first offer it sees of a share, whatever its attempt: a standby never saw attempt 0', () => {
    const a = new ShareAttempts()
    expect(a.offer(K, 0)).toEqual({ kind: 'take' })
    expect(a.offer('j2/0', 3)).toEqual({ kind: 'take' })
  })

  it('acknowledges the same attempt again without taking it twice, while it runs and after it is over', () => {
    const a = new ShareAttempts()
    a.running(K, 0)
    expect(a.offer(K, 0)).toEqual({ kind: 'have', attempt: 0 })
    a.over(K, 0)
    expect(a.offer(K, 0)).toEqual({ kind: 'have', attempt: 0 })
  })

  it('goes on as it is when the share it runs is re-offered to it, and refuses what is older from then on', () => {
    const a = new ShareAttempts()
    a.running(K, 0)
    expect(a.offer(K, 2)).toEqual({ kind: 'have', attempt: 0 })
    expect(a.offer(K, 1)).toEqual({ kind: 'stale', newest: 2 })
    // Over: the re-offer it acknowledged is not taken again, a newer one is.
    a.over(K, 0)
    expect(a.offer(K, 2)).toEqual({ kind: 'have', attempt: 0 })
    expect(a.offer(K, 3)).toEqual({ kind: 'take' })
  })

  it('refuses an attempt older than one it took', () => {
    const a = new ShareAttempts()
    a.running(K, 2)
    expect(a.offer(K, 1)).toEqual({ kind: 'stale', newest: 2 })
    a.over(K, 2)
    expect(a.offer(K, 0)).toEqual({ kind: 'stale', newest: 2 })
  })

  it('takes a newer attempt over one whose chunks are still coming, and the same one again once those were dropped', () => {
    const a = new ShareAttempts()
    a.pending(K, 0)
    expect(a.offer(K, 0)).toEqual({ kind: 'have', attempt: 0 })
    expect(a.offer(K, 1)).toEqual({ kind: 'take' })
    a.pending(K, 1)
    // The older attempt's timer firing late does not drop the newer one.
    a.dropped(K, 0)
    expect(a.offer(K, 1)).toEqual({ kind: 'have', attempt: 1 })
    a.dropped(K, 1)
    expect(a.offer(K, 1)).toEqual({ kind: 'take' })
    expect(a.offer(K, 0)).toEqual({ kind: 'stale', newest: 1 })
  })

  it('forgets the oldest shares that are over, never one that runs', () => {
    const a = new ShareAttempts(2)
    a.running('run/0', 0)
    a.running('a/0', 1)
    a.over('a/0', 1)
    a.running('b/0', 1)
    a.over('b/0', 1)
    // Three remembered with room for two: the oldest over (a) went, the running one stayed.
    expect(a.offer('a/0', 0)).toEqual({ kind: 'take' })
    expect(a.offer('b/0', 0)).toEqual({ kind: 'stale', newest: 1 })
    expect(a.offer('run/0', 0)).toEqual({ kind: 'have', attempt: 0 })
  })
})
