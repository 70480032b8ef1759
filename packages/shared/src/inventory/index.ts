/** Inventories of agentless nodes: YAML or JSON files, host ranges, and a watcher that keeps the last good version. */
export {
  type Inventory,
  type InventoryNode,
  type InventoryOptions,
  loadInventory,
  MAX_INVENTORY_BYTES,
  MAX_INVENTORY_NODES,
  parseInventory,
  position as sourcePosition,
  readSource,
  type Source,
} from './inventory.ts'
export { expandHostList, type HostList, type HostPattern, parseHostList, type RangeItem } from './range.ts'
export { type InventoryHandle, watchInventory } from './watch.ts'
