import type { Bus, Identity, Logger } from '@apiary/shared'
import { createMemoryBus } from '@apiary/shared/memory-bus'

/**
 * Where each role of an embedded cluster gets its bus: a connection of its own per role, or
 * one in-process bus that every role shares.
 *
 * @example const buses = memoryBuses(log); const bus = await buses.open('apiary-queen')
 */
export interface BusFactory {
  /**
   * The bus of one role; `name` names its connection (`apiary-worker:web-1`), `identity` says
   * who it is on NATS (its replies come to that identity's inbox prefix).
   */
  open(name: string, identity?: Identity): Promise<Bus>
  /** Done with a bus `open` gave: a connection of its own closes, a shared bus stays up. */
  release(bus: Bus): Promise<void>
  /** Ends what the factory itself holds (the shared bus). */
  close(): Promise<void>
}

/** One in-process bus shared by every role: the embedded cluster of `keeper dev`. */
export function memoryBuses(log: Logger): BusFactory {
  const bus = createMemoryBus(log)
  return {
    open: () => Promise.resolve(bus),
    release: () => Promise.resolve(),
    close: () => bus.close(),
  }
}
