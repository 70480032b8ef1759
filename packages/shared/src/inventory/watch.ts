import { unwatchFile, watchFile } from 'node:fs'
import { errorMessage } from '../errors.ts'
import type { Logger } from '../runtime/log.ts'
import { type Inventory, type InventoryNode, type InventoryOptions, loadInventory } from './inventory.ts'

export interface InventoryHandle {
  /** The nodes of the last good version, by id. */
  nodes(): ReadonlyMap<string, InventoryNode>
  /** Re-reads the file; a bad version is refused (and logged) and the last good one kept. */
  reload(): Promise<{ ok: true; nodes: number } | { ok: false; error: string }>
  close(): void
}

/**
 * Loads an inventory and keeps it current: the file is re-read when it changes (and on
 * `reload()`, e.g. on SIGHUP). The first load must succeed — a process does not start on a bad
 * inventory — but a later bad version never replaces the last good one.
 */
export async function watchInventory(
  path: string,
  log: Logger,
  opts: InventoryOptions & { pollMs?: number; onChange?: (inv: Inventory) => void } = {},
): Promise<InventoryHandle> {
  const first = await loadInventory(path, opts)
  let byId = new Map(first.nodes.map((n) => [n.id, n]))
  log.info({ inventory: path, nodes: first.nodes.length }, 'inventory loaded')
  opts.onChange?.(first)
  const reload: InventoryHandle['reload'] = async () => {
    try {
      const inv = await loadInventory(path, opts)
      byId = new Map(inv.nodes.map((n) => [n.id, n]))
      log.info({ inventory: path, nodes: inv.nodes.length }, 'inventory reloaded')
      opts.onChange?.(inv)
      return { ok: true, nodes: inv.nodes.length }
    } catch (err) {
      log.error({ inventory: path, problem: errorMessage(err) }, 'inventory refused; keeping the last good one')
      return { ok: false, error: errorMessage(err) }
    }
  }
  const onFileChange = () => void reload()
  watchFile(path, { interval: opts.pollMs ?? 2000, persistent: false }, onFileChange)
  return {
    nodes: () => byId,
    reload,
    close: () => unwatchFile(path, onFileChange),
  }
}
