import type { Logger } from '@apiary/shared'
import type { NatsConnectFlags } from '@apiary/shared/runtime'
import { createNatsBus } from '@apiary/shared/nats'
import type { BusFactory } from './buses.ts'

/**
 * A NATS connection per role, as the distributed roles have. Apart from embedded.ts so that
 * `keeper dev`, which loads the embedded cluster, never loads the NATS client.
 *
 * `connect` says how every connection authenticates, as the daemons' flags do: a credential, or
 * `insecure: true` said out loud (each connection then warns), as a test server without
 * authentication wants.
 *
 * @example startEmbedded({ log, buses: natsBuses({ url: 'nats://127.0.0.1:4222', log, connect: { insecure: true } }), queen: { stateDir } })
 */
export function natsBuses(o: { url: string; log: Logger; connectTimeoutMs?: number; connect: NatsConnectFlags }): BusFactory {
  const { connect } = o
  return {
    open: (name, identity) =>
      createNatsBus({
        url: o.url,
        name,
        log: o.log,
        ...connect,
        ...(identity ? { identity } : {}),
        ...(o.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: o.connectTimeoutMs }),
      }),
    release: (bus) => bus.close(),
    close: () => Promise.resolve(),
  }
}
