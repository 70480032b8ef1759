import type { Logger } from '@apiary/shared'
import { createNatsBus } from '@apiary/shared/nats'
import type { BusFactory } from './buses.ts'

/**
 * A NATS connection per role, as the distributed roles have. Apart from embedded.ts so that
 * `keeper dev`, which loads the embedded cluster, never loads the NATS client.
 *
 * @example startEmbedded({ log, buses: natsBuses({ url: 'nats://127.0.0.1:4222', log }), queen: { stateDir } })
 */
export function natsBuses(o: { url: string; log: Logger; connectTimeoutMs?: number }): BusFactory {
  return {
    open: (name) => createNatsBus({ url: o.url, name, log: o.log, ...(o.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: o.connectTimeoutMs }) }),
    release: (bus) => bus.close(),
    close: () => Promise.resolve(),
  }
}
