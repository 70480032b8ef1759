import { describe, expect, it } from 'vitest'
import type { Heartbeat, HostReach } from '@apiary/shared'
import type { InventoryNode } from '@apiary/shared/inventory'
import { DEFAULT_PRESENCE_LIMITS, MAX_WARMUP_MS, MISSED_BEATS, Presence } from './presence.ts'

const hb = (id: string, role: Heartbeat['role'] = 'worker', region = 'eu', o: Partial<Heartbeat> = {}): Heartbeat => ({
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
  ...o,
})

const known = (id: string, intervalMs: number, lastSeen = 0) => ({ id, region: 'eu', labels: {}, executor: 'local', intervalMs, lastSeen })
const inv = (id: string, region: string): InventoryNode => ({ id, address: id, port: 22, user: 'op', region, labels: {} })
const reach = (id: string): HostReach => ({ id, lastContact: 5, breaker: 'open', consecutiveFailures: 3 })

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

  it('lists a worker that drains as draining while it is online, and as neither once it beats again without it', () => {
    let now = 0
    const p = new Presence(() => now)
    p.beat(hb('a', 'worker', 'eu', { draining: true }))
    expect(p.node('a')).toMatchObject({ online: true, draining: true })
    now = 3001
    expect(p.node('a')?.online).toBe(false)
    expect(p.node('a')?.draining).toBeUndefined()
    p.beat(hb('a'))
    expect(p.node('a')).toMatchObject({ online: true })
    expect(p.node('a')?.draining).toBeUndefined()
  })

  it('reaches an inventory node only through an SSH worker of its region that does not drain', () => {
    const p = new Presence(() => 0)
    p.setInventory([inv('eu-1', 'eu')])
    p.beat(hb('s1', 'ssh-worker', 'eu', { draining: true }))
    expect(p.node('eu-1')?.online).toBe(false)
    p.beat(hb('s2', 'ssh-worker', 'eu'))
    expect(p.node('eu-1')?.online).toBe(true)
    p.beat(hb('s2', 'ssh-worker', 'eu', { draining: true }))
    expect(p.node('eu-1')?.online).toBe(false)
  })

  it('lists workers sorted, never hives', () => {
    const p = new Presence(() => 0)
    p.beat(hb('b'))
    p.beat(hb('a'))
    p.beat(hb('hive-1', 'hive', 'us'))
    expect(p.nodes().map((n) => n.id)).toEqual(['a', 'b'])
  })

  it('holds 200,000 nodes, 1,000 SSH workers and 1,000 hives unless told otherwise', () => {
    expect(DEFAULT_PRESENCE_LIMITS).toEqual({ nodes: 200_000, sshWorkers: 1_000, hives: 1_000 })
  })

  it('refuses a new node past its cap, and says why; the nodes it holds keep beating', () => {
    let now = 0
    const p = new Presence(() => now, { nodes: 2 })
    expect(p.beat(hb('a'))).toEqual({ isNew: true })
    expect(p.beat(hb('b'))).toEqual({ isNew: true })
    expect(p.beat(hb('c'))).toEqual({ isNew: false, refused: 'presence is full: it holds 2 nodes' })
    expect(p.node('c')).toBeUndefined()
    // Even offline, a node stays (it is a target) and keeps its place.
    now = 10_000
    expect(p.beat(hb('c')).refused).toBeDefined()
    expect(p.beat(hb('a'))).toEqual({ isNew: true })
    expect(p.nodes().map((n) => [n.id, n.online])).toEqual([
      ['a', true],
      ['b', false],
    ])
  })

  it('lets a new hive or SSH worker take the place of the one silent longest, but never of one online', () => {
    let now = 0
    const p = new Presence(() => now, { hives: 2, sshWorkers: 1 })
    p.beat(hb('h1', 'hive'))
    now = 100
    p.beat(hb('h2', 'hive'))
    p.beat(hb('s1', 'ssh-worker'))
    expect(p.beat(hb('h3', 'hive'))).toEqual({ isNew: false, refused: 'presence is full: it holds 2 hives, none of them offline' })
    expect(p.beat(hb('s2', 'ssh-worker')).refused).toBe('presence is full: it holds 1 ssh-workers, none of them offline')
    now = 3101 // h1 and h2 offline, h1 the longer
    expect(p.beat(hb('h3', 'hive'))).toEqual({ isNew: true })
    expect([p.hiveOnline('h1'), p.hiveOnline('h2'), p.hiveOnline('h3')]).toEqual([undefined, false, true])
    expect(p.beat(hb('s2', 'ssh-worker'))).toEqual({ isNew: true })
  })

  it('counts remembered nodes in the cap, keeping the most recently seen', () => {
    const p = new Presence(() => 1_000_000, { nodes: 2 })
    expect(p.remember([known('old', 1000, 1), known('new', 1000, 3), known('mid', 1000, 2)])).toEqual({ remembered: 2, overCap: 1 })
    expect(p.nodes().map((n) => n.id)).toEqual(['mid', 'new'])
    expect(p.beat(hb('stranger')).refused).toBeDefined()
    expect(p.beat(hb('new')).isNew).toBe(true)
  })

  it('waits after a restart three of the longest interval it knew, and never more than 2 min, whatever was stored', () => {
    let now = 1_000_000
    const p = new Presence(() => now)
    // 95 years, as a forged heartbeat once had an older queen store; or a real 10 min.
    p.remember([known('forged', 3e12), known('slow', 600_000), known('a', 5000)])
    expect(p.warmingUp()).toEqual({ waiting: 3, leftMs: MAX_WARMUP_MS })
    expect(p.node('forged')?.online).toBe(false)
    now += MAX_WARMUP_MS
    expect(p.warmingUp()).toBeUndefined()
    const q = new Presence(() => now)
    q.remember([known('a', 5000)])
    expect(q.warmingUp()).toEqual({ waiting: 1, leftMs: MISSED_BEATS * 5000 })
  })

  it('lets an agent take over an inventory node of its own region only', () => {
    const p = new Presence(() => 0)
    p.setInventory([inv('edge-1', 'eu')])
    expect(p.beat(hb('edge-1', 'worker', 'us'))).toEqual({ isNew: false, refused: 'node edge-1 is an inventory node of region eu' })
    expect(p.node('edge-1')).toMatchObject({ region: 'eu', executor: 'ssh' })
    expect(p.beat(hb('edge-1', 'worker', 'eu')).isNew).toBe(true)
    expect(p.node('edge-1')).toMatchObject({ region: 'eu', executor: 'local' })
  })

  it('does not let a node online in one region be taken over from another; once it is quiet, it may move', () => {
    let now = 0
    const p = new Presence(() => now)
    p.beat(hb('web-1', 'worker', 'eu'))
    expect(p.beat(hb('web-1', 'worker', 'us'))).toEqual({ isNew: false, refused: 'node web-1 is online in region eu' })
    expect(p.node('web-1')?.region).toBe('eu')
    now = 3001
    expect(p.beat(hb('web-1', 'worker', 'us')).isNew).toBe(true)
    expect(p.node('web-1')?.region).toBe('us')
  })

  it('holds a heartbeat to the bounded interval even if it was never parsed', () => {
    let now = 0
    const p = new Presence(() => now)
    p.beat(hb('a', 'worker', 'eu', { intervalMs: 3e12 }))
    now = MISSED_BEATS * 600_000 + 1
    expect(p.node('a')?.online).toBe(false)
  })

  it("counts an SSH worker's hosts only for inventory nodes of its own region", () => {
    const p = new Presence(() => 0)
    p.setInventory([inv('eu-1', 'eu'), inv('us-1', 'us')])
    p.beat(hb('ssh-eu', 'ssh-worker', 'eu', { hosts: [reach('eu-1'), reach('us-1'), reach('stranger')] }))
    expect(p.node('eu-1')).toMatchObject({ online: true, breaker: 'open', lastContact: 5, status: 'degraded' })
    expect(p.node('us-1')).toMatchObject({ online: false, breaker: 'closed', lastContact: null })
    expect(p.node('stranger')).toBeUndefined()
    // A node that leaves the inventory leaves its reach behind.
    p.setInventory([inv('us-1', 'us')])
    p.setInventory([inv('eu-1', 'eu'), inv('us-1', 'us')])
    expect(p.node('eu-1')).toMatchObject({ breaker: 'closed', lastContact: null })
  })

  it('a hive reporting hosts changes nothing', () => {
    const p = new Presence(() => 0)
    p.setInventory([inv('eu-1', 'eu')])
    p.beat(hb('hive-eu', 'hive', 'eu', { hosts: [reach('eu-1')] }))
    expect(p.node('eu-1')).toMatchObject({ breaker: 'closed', lastContact: null })
  })
})

describe('Presence: who is gone', () => {
  it('judges a quiet node gone only while others are still heard, and nobody for a while after a silence of all', () => {
    let now = 0
    const p = new Presence(() => now, {}, 2000)
    p.beat(hb('a'))
    p.beat(hb('b'))
    now = 2500
    p.beat(hb('a'))
    p.beat(hb('b'))
    now = 60_000 // both quiet a long time, and nobody heard: the bus, not them
    expect([p.node('a')?.online, p.workerGone('a'), p.workerGone('b')]).toEqual([false, false, false])
    // The bus is back: b beats first; a is not judged until the queen has settled again.
    p.beat(hb('b'))
    expect(p.workerGone('a')).toBe(false)
    now += 1999
    p.beat(hb('b'))
    expect(p.workerGone('a')).toBe(false)
    now += 1
    expect([p.workerGone('a'), p.workerGone('b')]).toEqual([true, false])
  })

  it('judges nobody gone while it settles after a start, and a remembered node only once the warm-up is over', () => {
    let now = 1_000_000
    const p = new Presence(() => now, {}, 5000)
    p.remember([known('r', 1000)])
    p.beat(hb('x'))
    expect([p.workerGone('r'), p.hiveGone('h-never'), p.workerGone('unknown')]).toEqual([false, false, false])
    now += 5000
    expect([p.workerGone('r'), p.hiveGone('h-never'), p.workerGone('unknown')]).toEqual([true, true, false])
  })

  it('takes a hive that says it left as gone at once, settling or not, and back when it beats again; a worker is not taken at its word', () => {
    const now = 1_000_000
    const p = new Presence(() => now, {}, 5000)
    p.beat(hb('h', 'hive'))
    p.beat(hb('w'))
    p.beat(hb('h', 'hive', 'eu', { leaving: true }))
    p.beat(hb('w', 'worker', 'eu', { leaving: true }))
    expect([p.hiveGone('h'), p.hiveOnline('h'), p.workerGone('w'), p.node('w')?.online]).toEqual([true, false, false, true])
    p.beat(hb('h', 'hive'))
    expect([p.hiveGone('h'), p.hiveOnline('h')]).toEqual([false, true])
  })

  it('judges an agentless node gone when every SSH worker of its region is', () => {
    let now = 0
    const p = new Presence(() => now, {}, 0)
    p.setInventory([inv('edge-1', 'eu')])
    p.beat(hb('s1', 'ssh-worker'))
    p.beat(hb('s2', 'ssh-worker'))
    now = 3500
    p.beat(hb('s2', 'ssh-worker'))
    expect(p.workerGone('edge-1')).toBe(false)
    now = 7500
    p.beat(hb('h', 'hive'))
    expect([p.workerGone('edge-1'), p.hiveGone('h')]).toEqual([true, false])
  })
})
