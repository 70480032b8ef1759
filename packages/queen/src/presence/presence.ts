import type { Heartbeat, NodeInfo } from '@apiary/shared'

interface Entry {
  hb: Heartbeat
  lastSeen: number
}

/** How many heartbeat intervals may pass before a node or hive counts as offline. */
export const MISSED_BEATS = 3

/**
 * Who is alive, from heartbeats. A node is online until three of its own intervals pass
 * without one. Time comes from `now()` so tests of the logic need no clock.
 */
export class Presence {
  readonly #workers = new Map<string, Entry>()
  readonly #hives = new Map<string, Entry>()
  constructor(private readonly now: () => number = Date.now) {}

  beat(hb: Heartbeat): { isNew: boolean } {
    const map = hb.role === 'worker' ? this.#workers : this.#hives
    const isNew = !map.has(hb.id) || !this.#online(map.get(hb.id)!)
    map.set(hb.id, { hb, lastSeen: this.now() })
    return { isNew }
  }

  #online(e: Entry): boolean {
    return this.now() - e.lastSeen <= e.hb.intervalMs * MISSED_BEATS
  }

  node(id: string): NodeInfo | undefined {
    const e = this.#workers.get(id)
    return e ? this.#info(e) : undefined
  }

  nodes(): NodeInfo[] {
    return [...this.#workers.values()].map((e) => this.#info(e)).sort((a, b) => a.id.localeCompare(b.id))
  }

  #info(e: Entry): NodeInfo {
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
}
