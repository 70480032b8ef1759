import { describe, expect, it } from 'vitest'
import { Ack, Heartbeat, type HostReach } from './messages.ts'

const beat = {
  id: 'web-1',
  role: 'worker',
  region: 'eu',
  labels: { role: 'web' },
  executor: 'local',
  status: 'healthy',
  running: 0,
  version: '0.1.0',
  intervalMs: 5000,
  ts: 0,
}
const problem = (patch: Record<string, unknown>) => {
  const r = Heartbeat.safeParse({ ...beat, ...patch })
  return r.success ? undefined : r.error.issues[0]?.path.join('.')
}

describe('Heartbeat', () => {
  it('takes an ordinary beat', () => {
    expect(Heartbeat.parse(beat)).toEqual(beat)
  })

  it('bounds the interval to 100 ms .. 10 min: a huge one would keep a node online, and a restarted queen waiting, for years', () => {
    expect(problem({ intervalMs: 100 })).toBeUndefined()
    expect(problem({ intervalMs: 600_000 })).toBeUndefined()
    expect(problem({ intervalMs: 99 })).toBe('intervalMs')
    expect(problem({ intervalMs: 600_001 })).toBe('intervalMs')
    expect(problem({ intervalMs: 3e12 })).toBe('intervalMs')
  })

  it('holds at most 64 labels', () => {
    const labels = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']))
    expect(problem({ labels: labels(64) })).toBeUndefined()
    expect(problem({ labels: labels(65) })).toBe('labels')
  })

  it('bounds version and executor to 64 characters', () => {
    expect(problem({ version: 'v'.repeat(64), executor: 'e'.repeat(64) })).toBeUndefined()
    expect(problem({ version: 'v'.repeat(65) })).toBe('version')
    expect(problem({ executor: 'e'.repeat(65) })).toBe('executor')
  })

  it('carries at most 10,000 hosts a beat', () => {
    const hosts = (n: number): HostReach[] => Array.from({ length: n }, (_, i) => ({ id: `h${i}`, lastContact: null, breaker: 'closed', consecutiveFailures: 0 }))
    expect(problem({ role: 'ssh-worker', hosts: hosts(10_000) })).toBeUndefined()
    expect(problem({ role: 'ssh-worker', hosts: hosts(10_001) })).toBe('hosts')
  })
})

describe('Ack', () => {
  it('takes an id as who answered and one plain line as why, nothing a terminal would act on', () => {
    expect(Ack.safeParse({ accepted: false, by: 'hive-eu-1', reason: 'at capacity: 64 tasks running' }).success).toBe(true)
    expect(Ack.safeParse({ accepted: true, by: 'hive\u001b[2J' }).success).toBe(false)
    expect(Ack.safeParse({ accepted: false, by: 'hive-eu-1', reason: 'refused\nweb-1: ok' }).success).toBe(false)
    expect(Ack.safeParse({ accepted: false, by: 'hive-eu-1', reason: '\u009b31mred' }).success).toBe(false)
  })
})
