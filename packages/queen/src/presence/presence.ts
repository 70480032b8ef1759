import type { Heartbeat, HostReach, NodeInfo } from '@apiary/shared'
import type { InventoryNode } from '@apiary/shared/inventory'

interface Entry {
  hb: Heartbeat
  lastSeen: number
}

/** How many heartbeat intervals may pass before a node or worker counts as offline. */
export const MISSED_BEATS = 3

/**
 * Who can be reached, from heartbeats and the inventory. An agent node is online until three
 * of its own intervals pass without a heartbeat. An inventory (agentless) node is online while
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
  constructor(private readonly now: () => number = Date.now) {}

  /**
   * Seeds the agent nodes a previous run knew, as offline until they heartbeat again. Until all
   * of them have (or three of their intervals passed), the node list is not yet complete.
   */
  remember(nodes: ReadonlyArray<{ id: string; region: string; labels: Record<string, string>; executor: string; intervalMs: number; lastSeen: number }>): void {
    let longest = 0
    for (const n of nodes) {
      if (this.#agents.has(n.id)) continue
      const hb: Heartbeat = { id: n.id, role: 'worker', region: n.region, labels: n.labels, executor: n.executor, status: 'healthy', running: 0, version: '', intervalMs: n.intervalMs, ts: n.lastSeen }
      this.#agents.set(n.id, { hb, lastSeen: Math.min(n.lastSeen, this.now() - n.intervalMs * MISSED_BEATS - 1) })
      this.#awaiting.add(n.id)
      longest = Math.max(longest, n.intervalMs)
    }
    this.#warmUntil = this.now() + longest * MISSED_BEATS
  }

  /** While the node list may still be incomplete after a restart: how many are awaited and for how long at most. */
  warmingUp(): { waiting: number; leftMs: number } | undefined {
    const left = this.#warmUntil - this.now()
    if (this.#awaiting.size === 0 || left <= 0) return undefined
    return { waiting: this.#awaiting.size, leftMs: left }
  }

  beat(hb: Heartbeat): { isNew: boolean } {
    const map = hb.role === 'worker' ? this.#agents : hb.role === 'hive' ? this.#hives : this.#sshWorkers
    const prev = map.get(hb.id)
    const isNew = !prev || !this.#online(prev)
    map.set(hb.id, { hb, lastSeen: this.now() })
    if (hb.role === 'worker') this.#awaiting.delete(hb.id)
    for (const h of hb.hosts ?? []) this.#reach.set(h.id, h)
    return { isNew }
  }

  /** Replaces the agentless nodes (a new inventory); agent nodes win when an id is in both. */
  setInventory(nodes: readonly InventoryNode[]): void {
    this.#inventory = new Map(nodes.map((n) => [n.id, n]))
  }

  #online(e: Entry): boolean {
    return this.now() - e.lastSeen <= e.hb.intervalMs * MISSED_BEATS
  }

  /** Whether a hive still heartbeats; undefined for one never heard of (e.g. before a restart). */
  hiveOnline(id: string): boolean | undefined {
    const e = this.#hives.get(id)
    return e ? this.#online(e) : undefined
  }

  /** Regions with at least one live SSH worker. */
  #sshRegions(): Set<string> {
    const out = new Set<string>()
    for (const e of this.#sshWorkers.values()) if (this.#online(e)) out.add(e.hb.region)
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
