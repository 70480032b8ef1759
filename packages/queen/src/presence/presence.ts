import { Heartbeat, type HostReach, type NodeInfo } from '@apiary/shared'
import type { InventoryNode } from '@apiary/shared/inventory'

interface Entry {
  /** The last heartbeat, without its hosts (they are kept per host, in `#reach`). */
  hb: Omit<Heartbeat, 'hosts'>
  lastSeen: number
  /** Its last beat said it stopped (a hive that drained): gone now, whatever its interval. */
  left?: true
}

/** The longest a restarted queen waits for the nodes it knew before it takes jobs again. */
export const MAX_WARMUP_MS = 2 * 60_000

/** How many heartbeat intervals may pass before a node or worker counts as offline. */
export const MISSED_BEATS = 3

/** How many of each presence holds: a heartbeat of a new id past its cap is refused. */
export interface PresenceLimits {
  /** Agent nodes, those remembered from before a restart included. */
  nodes: number
  sshWorkers: number
  hives: number
}

/** Twice the 100,000 nodes the queen is designed for; SSH workers and hives are few per region. */
export const DEFAULT_PRESENCE_LIMITS: Readonly<PresenceLimits> = { nodes: 200_000, sshWorkers: 1_000, hives: 1_000 }

const { minValue, maxValue } = Heartbeat.shape.intervalMs
/** A heartbeat interval within the contract's bounds (a node remembered from an older queen may hold any). */
function boundedInterval(ms: number): number {
  return Math.min(Math.max(ms, minValue ?? 1), maxValue ?? ms)
}

/** Three of the default 5 s heartbeat intervals. */
export const DEFAULT_SETTLE_MS = 15_000

/**
 * Who can be reached, from heartbeats and the inventory. An agent node is online until three
 * of its own intervals pass without a heartbeat. It is *gone* (what ends its running tasks
 * `lost`) only when it went quiet while others' heartbeats still came: when nobody is heard
 * (the queen's own bus is down, NATS restarts) nobody is judged, and when heartbeats come
 * again after such a silence the queen settles again before it judges anyone. An inventory (agentless) node is online while
 * an SSH worker of its region is; its last contact and breaker come from those workers'
 * reports. Time comes from `now()` so tests of the logic need no clock.
 */
export class Presence {
  readonly #agents = new Map<string, Entry>()
  readonly #sshWorkers = new Map<string, Entry>()
  readonly #hives = new Map<string, Entry>()
  readonly #reach = new Map<string, HostReach>()
  #inventory = new Map<string, InventoryNode>()
  /** Nodes known before a restart that have not heartbeated since. */
  readonly #awaiting = new Set<string>()
  #warmUntil = 0
  /** When the latest heartbeat of anyone came. */
  #lastHeard = 0
  readonly #limits: Readonly<PresenceLimits>

  #since: number
  readonly #settleMs: number

  /**
   * `settleMs`: for this long after it starts (or takes over) the queen has not heard everyone
   * yet, so no worker or hive counts as gone (default `DEFAULT_SETTLE_MS`).
   */
  constructor(
    private readonly now: () => number = Date.now,
    limits: Partial<PresenceLimits> = {},
    settleMs = DEFAULT_SETTLE_MS,
  ) {
    this.#limits = { ...DEFAULT_PRESENCE_LIMITS, ...limits }
    this.#since = now()
    this.#settleMs = settleMs
  }

  /** The longest heartbeat interval heard since it started settling. */
  #longestHeard = 0

  /** Three of the longest interval heard (everyone alive has beaten by then), at most `settleMs`. */
  #settling(): boolean {
    const window = this.#longestHeard > 0 ? Math.min(this.#settleMs, this.#longestHeard * MISSED_BEATS) : this.#settleMs
    return this.now() - this.#since < window
  }

  /**
   * Seeds the agent nodes a previous run knew, as offline until they heartbeat again. Until all
   * of them have (or three of their intervals passed), the node list is not yet complete. An
   * interval is taken within the contract's bounds, so the wait is at most three of the longest
   * a heartbeat may have; past the cap of nodes, the most recently seen are the ones remembered.
   */
  remember(nodes: ReadonlyArray<{ id: string; region: string; labels: Record<string, string>; executor: string; intervalMs: number; lastSeen: number }>): { remembered: number; overCap: number } {
    let longest = 0
    let remembered = 0
    let overCap = 0
    for (const n of [...nodes].sort((a, b) => b.lastSeen - a.lastSeen)) {
      if (this.#agents.has(n.id)) continue
      if (this.#agents.size >= this.#limits.nodes) {
        overCap++
        continue
      }
      const intervalMs = boundedInterval(n.intervalMs)
      const hb = { id: n.id, role: 'worker' as const, region: n.region, labels: n.labels, executor: n.executor, status: 'healthy' as const, running: 0, version: '', intervalMs, ts: n.lastSeen }
      this.#agents.set(n.id, { hb, lastSeen: Math.min(n.lastSeen, this.now() - intervalMs * MISSED_BEATS - 1) })
      this.#awaiting.add(n.id)
      longest = Math.max(longest, intervalMs)
      remembered++
    }
    // However long a node's interval, the queen takes jobs again within MAX_WARMUP_MS: a node
    // that reports only every 10 min is then a target that has not reported yet (offline).
    this.#warmUntil = this.now() + Math.min(longest * MISSED_BEATS, MAX_WARMUP_MS)
    return { remembered, overCap }
  }

  /** While the node list may still be incomplete after a restart: how many are awaited and for how long at most. */
  warmingUp(): { waiting: number; leftMs: number } | undefined {
    const left = this.#warmUntil - this.now()
    if (this.#awaiting.size === 0 || left <= 0) return undefined
    return { waiting: this.#awaiting.size, leftMs: left }
  }

  /**
   * Takes a heartbeat. A known id always beats; a new one is `refused` (the reason says why)
   * once its role's cap is reached, unless, for an SSH worker or a hive (whose default ids
   * change with every restart), it can take the place of the one silent longest, offline.
   * An SSH worker's hosts count only for inventory nodes of its own region.
   */
  beat(hb: Heartbeat): { isNew: boolean; refused?: string } {
    const map = hb.role === 'worker' ? this.#agents : hb.role === 'hive' ? this.#hives : this.#sshWorkers
    const prev = map.get(hb.id)
    if (!prev && !this.#makeRoom(hb.role, map)) {
      const held = hb.role === 'worker' ? `${this.#limits.nodes} nodes` : `${map.size} ${hb.role}s, none of them offline`
      return { isNew: false, refused: `presence is full: it holds ${held}` }
    }
    // A node online in one region is not taken over from another: the same id from a second
    // region is refused until the first has gone quiet (then it has moved).
    if (prev && hb.role === 'worker' && prev.hb.region !== hb.region && this.#online(prev)) {
      return { isNew: false, refused: `node ${hb.id} is online in region ${prev.hb.region}` }
    }
    // An agent takes over an inventory node of its own region (it has installed an agent), never
    // one of another region: that would be a second node under the same id.
    const inv = hb.role === 'worker' ? this.#inventory.get(hb.id) : undefined
    if (inv && inv.region !== hb.region) return { isNew: false, refused: `node ${hb.id} is an inventory node of region ${inv.region}` }
    const isNew = !prev || !this.#online(prev)
    const { hosts, leaving, ...kept } = hb
    kept.intervalMs = boundedInterval(hb.intervalMs)
    // Only a hive is taken at its word: a worker's running tasks end by their own events, not by its leaving.
    map.set(hb.id, { hb: kept, lastSeen: this.now(), ...(leaving && hb.role === 'hive' ? { left: true as const } : {}) })
    // The first heartbeat after nobody was heard for two of its intervals: the bus (or this
    // queen's link to it) was down, and the others will be back within their own intervals.
    // (A silence shorter than that cannot make anyone gone: that takes three.)
    if (this.#lastHeard > 0 && this.now() - this.#lastHeard > kept.intervalMs * 2) {
      this.#since = this.now()
      this.#longestHeard = 0
    }
    this.#longestHeard = Math.max(this.#longestHeard, kept.intervalMs)
    this.#lastHeard = this.now()
    if (hb.role === 'worker') this.#awaiting.delete(hb.id)
    if (hb.role === 'ssh-worker') {
      for (const h of hosts ?? []) if (this.#inventory.get(h.id)?.region === hb.region) this.#reach.set(h.id, h)
    }
    return { isNew }
  }

  /** Whether a new id of `role` fits: under the cap, or (not for nodes) in place of an offline one. */
  #makeRoom(role: Heartbeat['role'], map: Map<string, Entry>): boolean {
    if (role === 'worker') return map.size < this.#limits.nodes
    if (map.size < (role === 'hive' ? this.#limits.hives : this.#limits.sshWorkers)) return true
    // Agent nodes stay (they are targets, offline or not); a hive or SSH worker gone offline need not.
    let oldest: [string, Entry] | undefined
    for (const kv of map) if (!this.#online(kv[1]) && (!oldest || kv[1].lastSeen < oldest[1].lastSeen)) oldest = kv
    if (oldest) map.delete(oldest[0])
    return oldest !== undefined
  }

  /** Replaces the agentless nodes (a new inventory); agent nodes win when an id is in both. */
  setInventory(nodes: readonly InventoryNode[]): void {
    this.#inventory = new Map(nodes.map((n) => [n.id, n]))
    for (const id of this.#reach.keys()) if (this.#inventory.get(id) === undefined) this.#reach.delete(id)
  }

  #online(e: Entry): boolean {
    return !e.left && this.now() - e.lastSeen <= e.hb.intervalMs * MISSED_BEATS
  }

  /** Offline, and others were heard well after it went quiet: it is quiet, not the bus. */
  #gone(e: Entry): boolean {
    if (e.left) return true
    if (this.#online(e)) return false
    return this.#lastHeard - e.lastSeen > e.hb.intervalMs * MISSED_BEATS
  }

  /**
   * A node known to have gone: it stopped heartbeating while others went on. A node remembered
   * from before a restart that has not reported yet is not gone until the warm-up is over.
   */
  workerGone(id: string): boolean {
    if (this.#settling()) return false
    const a = this.#agents.get(id)
    if (a) return this.#awaiting.has(id) ? this.#warmUntil <= this.now() : this.#gone(a)
    const inv = this.#inventory.get(id)
    if (!inv) return false
    // An agentless node is reached while any SSH worker of its region is; with none heard of
    // yet, only once the full settle is over (theirs may be a longer interval than any heard).
    let known = false
    for (const e of this.#sshWorkers.values()) {
      if (e.hb.region !== inv.region) continue
      known = true
      if (!this.#gone(e)) return false
    }
    return known || this.now() - this.#since >= this.#settleMs
  }

  /** A hive known to have gone (see `workerGone`), or never heard of since this queen started and settled. */
  hiveGone(id: string): boolean {
    const e = this.#hives.get(id)
    // One that said it left is gone, settling or not: its shares go to another hive at once.
    if (e?.left) return true
    if (this.#settling()) return false
    // One never heard of may beat less often than any heard so far: it has the full settle.
    return e ? this.#gone(e) : this.now() - this.#since >= this.#settleMs
  }

  /** Whether a hive still heartbeats; undefined for one never heard of (e.g. before a restart). */
  hiveOnline(id: string): boolean | undefined {
    const e = this.#hives.get(id)
    return e ? this.#online(e) : undefined
  }

  /** Regions with at least one live SSH worker that takes tasks (not draining). */
  #sshRegions(): Set<string> {
    const out = new Set<string>()
    // One that drains takes no new task: its region's hosts are reached only through the others.
    for (const e of this.#sshWorkers.values()) if (this.#online(e) && !e.hb.draining) out.add(e.hb.region)
    return out
  }

  node(id: string): NodeInfo | undefined {
    const a = this.#agents.get(id)
    if (a) return this.#agentInfo(a)
    const inv = this.#inventory.get(id)
    return inv ? this.#inventoryInfo(inv, this.#sshRegions()) : undefined
  }

  /** Is this node reached over SSH (an inventory node no agent claims)? */
  isAgentless(id: string): boolean {
    return !this.#agents.has(id) && this.#inventory.has(id)
  }

  nodes(): NodeInfo[] {
    const regions = this.#sshRegions()
    const out: NodeInfo[] = [...this.#agents.values()].map((e) => this.#agentInfo(e))
    for (const n of this.#inventory.values()) if (!this.#agents.has(n.id)) out.push(this.#inventoryInfo(n, regions))
    return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  #agentInfo(e: Entry): NodeInfo {
    return {
      id: e.hb.id,
      region: e.hb.region,
      labels: e.hb.labels,
      executor: e.hb.executor,
      status: e.hb.status,
      online: this.#online(e),
      lastSeen: e.lastSeen,
      running: e.hb.running,
      version: e.hb.version,
      ...(e.hb.refused && e.hb.refused.count > 0 ? { refused: e.hb.refused } : {}),
      ...(e.hb.draining && this.#online(e) ? { draining: true as const } : {}),
    }
  }

  #inventoryInfo(n: InventoryNode, sshRegions: Set<string>): NodeInfo {
    const reach = this.#reach.get(n.id)
    return {
      id: n.id,
      region: n.region,
      labels: { ...n.labels },
      executor: 'ssh',
      status: reach && reach.breaker !== 'closed' ? 'degraded' : 'healthy',
      online: sshRegions.has(n.region),
      lastSeen: reach?.lastContact ?? 0,
      running: 0,
      version: '',
      lastContact: reach?.lastContact ?? null,
      breaker: reach?.breaker ?? 'closed',
    }
  }
}
