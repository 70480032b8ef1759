import { describe, expect, it } from 'vitest'
import { type JobEvent, type WireEvent } from '@apiary/shared'
import { silentLogger } from '@apiary/shared/runtime'
import type { Batch } from '../store/store.ts'
import { EventLog } from './event-log.ts'

const ev = (jobId: string, node: string): WireEvent => ({ jobId, ts: 0, kind: 'node.started', node, human: '' })
const tick = () => new Promise<void>((resolve) => setImmediate(resolve))

describe('EventLog', () => {
  it('numbers each job gaplessly, from where it left off', () => {
    const log = new EventLog({ commit: () => {} }, silentLogger())
    log.open('a', 0)
    log.open('b', 41)
    expect([log.append(ev('a', 'x'))?.seq, log.append(ev('b', 'x'))?.seq, log.append(ev('a', 'y'))?.seq]).toEqual([1, 42, 2])
    log.close()
  })

  it('commits what one tick appended in one batch, and tells listeners only after it is stored', async () => {
    const batches: Batch[] = []
    const heard: JobEvent[] = []
    const log = new EventLog({ commit: (b) => void batches.push(b) }, silentLogger())
    log.open('a', 0)
    log.listen('a', (e) => {
      // Stored before heard.
      expect(batches.flatMap((b) => b.events.map((x) => x.event.seq))).toContain(e.seq)
      heard.push(e)
    })
    for (let i = 0; i < 5; i++) log.append(ev('a', `n${i}`))
    log.end({ jobId: 'a', state: 'ok', finishedAt: 1, counts: {}, stopReason: null })
    expect(heard).toEqual([])
    await tick()
    expect(batches).toHaveLength(1)
    expect(batches[0]!.events).toHaveLength(5)
    expect(batches[0]!.ends).toHaveLength(1)
    expect(heard.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5])
    log.close()
  })

  it('keeps a batch the store refused, in order, and retries it: nothing dropped, nothing heard early', async () => {
    let fail = true
    const stored: number[] = []
    const heard: number[] = []
    let retried!: () => void
    const again = new Promise<void>((resolve) => (retried = resolve))
    const log = new EventLog(
      {
        commit: (b) => {
          if (fail) {
            fail = false
            throw new Error('disk full')
          }
          stored.push(...b.events.map((x) => x.event.seq))
          retried()
        },
      },
      silentLogger(),
      10,
    )
    log.open('a', 0)
    log.listen('a', (e) => heard.push(e.seq))
    log.append(ev('a', 'x'))
    log.append(ev('a', 'y'))
    await tick()
    expect(heard).toEqual([])
    log.append(ev('a', 'z'))
    await again
    expect(stored).toEqual([1, 2, 3])
    expect(heard).toEqual([1, 2, 3])
    log.close()
  })

  it('drops an event of a job that is not open, so one stray event cannot block the commits', async () => {
    const stored: string[] = []
    const log = new EventLog({ commit: (b) => void stored.push(...b.events.map((x) => `${x.event.jobId}/${x.event.seq}`)) }, silentLogger())
    log.open('a', 0)
    log.append(ev('a', 'x'))
    log.end({ jobId: 'a', state: 'ok', finishedAt: 1, counts: {}, stopReason: null })
    expect(log.append(ev('a', 'late'))).toBeUndefined()
    expect(log.append(ev('never-opened', 'x'))).toBeUndefined()
    log.open('b', 0)
    log.append(ev('b', 'x'))
    await tick()
    expect(stored).toEqual(['a/1', 'b/1'])
    log.close()
  })

  it('stops telling a listener that left', async () => {
    const heard: number[] = []
    const log = new EventLog({ commit: () => {} }, silentLogger())
    log.open('a', 0)
    const off = log.listen('a', (e) => heard.push(e.seq))
    log.append(ev('a', 'x'))
    await tick()
    off()
    log.append(ev('a', 'y'))
    await tick()
    expect(heard).toEqual([1])
    log.close()
  })
})
