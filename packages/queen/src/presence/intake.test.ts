import { describe, expect, it } from 'vitest'
import { type BusMessage, subjects } from '@apiary/shared'
import { HeartbeatIntake, SSH_BEATS_WAITING } from './intake.ts'

const beat = (role: 'worker' | 'hive' | 'ssh-worker', id: string, n: number): BusMessage => ({
  subject: subjects.heartbeat(role, 'eu', id),
  data: { id, n },
  expectsReply: false,
  respond: () => undefined,
})

/** An intake whose slices run when the test says, on a clock the test moves. */
function harness(o: { maxWaiting?: number; costMs?: number } = {}) {
  let clock = 0
  const deferred: Array<() => void> = []
  const taken: Array<{ id: string; n: number }> = []
  const dropped: string[] = []
  const intake = new HeartbeatIntake({
    take: (m) => {
      taken.push(m.data as { id: string; n: number })
      clock += o.costMs ?? 0
    },
    dropped: (m) => dropped.push(m.subject),
    ...(o.maxWaiting !== undefined ? { maxWaiting: o.maxWaiting } : {}),
    sliceMs: 8,
    defer: (fn) => void deferred.push(fn),
    now: () => clock,
  })
  const runSlice = () => {
    const fn = deferred.shift()
    if (!fn) throw new Error('no slice scheduled')
    fn()
  }
  return { intake, taken, dropped, deferred, runSlice }
}

describe('HeartbeatIntake', () => {
  it('takes nothing while the bus hands heartbeats over, then takes them in a later turn of the loop, in order', () => {
    const h = harness()
    h.intake.offer(beat('worker', 'a', 1))
    h.intake.offer(beat('worker', 'b', 1))
    expect(h.taken).toEqual([])
    expect(h.deferred).toHaveLength(1)
    h.runSlice()
    expect(h.taken).toEqual([{ id: 'a', n: 1 }, { id: 'b', n: 1 }])
    expect(h.deferred).toHaveLength(0)
  })

  it("keeps only a node's newest heartbeat while it waits, in the older one's place", () => {
    const h = harness()
    h.intake.offer(beat('worker', 'a', 1))
    h.intake.offer(beat('worker', 'b', 1))
    h.intake.offer(beat('worker', 'a', 2))
    h.intake.offer(beat('hive', 'h', 1))
    h.intake.offer(beat('hive', 'h', 2))
    expect(h.intake.waiting).toBe(3)
    h.runSlice()
    expect(h.taken).toEqual([{ id: 'a', n: 2 }, { id: 'b', n: 1 }, { id: 'h', n: 2 }])
  })

  it("keeps every heartbeat of an SSH worker (each says which hosts changed since the one before)", () => {
    const h = harness()
    for (let n = 1; n <= 3; n++) h.intake.offer(beat('ssh-worker', 's', n))
    h.runSlice()
    expect(h.taken.map((t) => t.n)).toEqual([1, 2, 3])
  })

  it('holds at most SSH_BEATS_WAITING of one SSH worker: its flood leaves room for the others', () => {
    const h = harness()
    for (let n = 1; n <= SSH_BEATS_WAITING + 5; n++) h.intake.offer(beat('ssh-worker', 's', n))
    h.intake.offer(beat('ssh-worker', 't', 1))
    h.intake.offer(beat('worker', 'a', 1))
    expect(h.dropped).toHaveLength(5)
    expect(h.intake.waiting).toBe(SSH_BEATS_WAITING + 2)
    h.runSlice()
    expect(h.taken.filter((t) => t.id === 's').map((t) => t.n)).toEqual(Array.from({ length: SSH_BEATS_WAITING }, (_, i) => i + 1))
    // Taken, they make room again.
    h.intake.offer(beat('ssh-worker', 's', 99))
    expect(h.dropped).toHaveLength(5)
  })

  it('yields the loop once a slice has taken its time, and goes on in the next', () => {
    const h = harness({ costMs: 3 })
    for (let i = 0; i < 10; i++) h.intake.offer(beat('worker', `n${i}`, 1))
    h.runSlice()
    // 3 ms each, 8 ms a slice: the third crosses the line.
    expect(h.taken).toHaveLength(3)
    expect(h.deferred).toHaveLength(1)
    let slices = 1
    while (h.deferred.length > 0 && slices < 100) {
      h.runSlice()
      slices++
    }
    expect(h.taken).toHaveLength(10)
    expect(slices).toBe(4)
  })

  it('holds at most maxWaiting; past that a new sender is dropped and said, a waiting one still replaced', () => {
    const h = harness({ maxWaiting: 2 })
    h.intake.offer(beat('worker', 'a', 1))
    h.intake.offer(beat('worker', 'b', 1))
    h.intake.offer(beat('worker', 'c', 1))
    h.intake.offer(beat('worker', 'a', 2))
    expect(h.dropped).toEqual([subjects.heartbeat('worker', 'eu', 'c')])
    h.runSlice()
    expect(h.taken).toEqual([{ id: 'a', n: 2 }, { id: 'b', n: 1 }])
  })

  it('takes nothing once closed', () => {
    const h = harness()
    h.intake.offer(beat('worker', 'a', 1))
    h.intake.close()
    h.runSlice()
    h.intake.offer(beat('worker', 'b', 1))
    expect(h.taken).toEqual([])
    expect(h.intake.waiting).toBe(0)
  })
})
