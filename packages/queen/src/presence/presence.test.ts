import { describe, expect, it } from 'vitest'
import type { Heartbeat } from '@apiary/shared'
import { Presence } from './presence.ts'

const hb = (id: string, role: 'worker' | 'hive' = 'worker', region = 'eu'): Heartbeat => ({
  id,
  role,
  region,
  labels: { role: 'web' },
  executor: 'local',
  status: 'healthy',
  running: 0,
  version: 't',
  intervalMs: 1000,
  ts: 0,
})

describe('Presence', () => {
  it('keeps a node online until three of its intervals pass without a heartbeat', () => {
    let now = 0
    const p = new Presence(() => now)
    expect(p.beat(hb('a')).isNew).toBe(true)
    expect(p.beat(hb('a')).isNew).toBe(false)
    now = 3000
    expect(p.node('a')?.online).toBe(true)
    now = 3001
    expect(p.node('a')?.online).toBe(false)
    expect(p.beat(hb('a')).isNew).toBe(true)
    expect(p.node('a')?.online).toBe(true)
  })

  it('lists workers sorted, never hives', () => {
    const p = new Presence(() => 0)
    p.beat(hb('b'))
    p.beat(hb('a'))
    p.beat(hb('hive-1', 'hive', 'us'))
    expect(p.nodes().map((n) => n.id)).toEqual(['a', 'b'])
  })
})
