/**
 * A child process of the fan-out benchmark. It hosts a slice of the simulated fleet: for each
 * node id, one real apiary agent worker (added to an embedded cluster without a queen, on a
 * NATS connection of its own, as a real node has) and one plain NATS responder for the raw
 * baseline (also its own connection).
 *
 * Forked by hosts.ts; talks to the parent only over IPC (protocol.ts, bench/lib/child-host.ts).
 * Exits by itself if the parent goes away.
 */
import { errorMessage } from '@apiary/shared'
import { createLogger } from '@apiary/shared/runtime'
import { type Embedded, natsBuses, startEmbedded } from '@apiary/keeper'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { serveParent } from '../lib/child-host.ts'
import { eachLimited } from '../lib/each-limited.ts'
import type { FromHost, StartHost } from './protocol.ts'

const log = createLogger({ component: 'bench-host', level: process.env.APIARY_LOG_LEVEL ?? 'warn' })
const enc = new TextEncoder()
const dec = new TextDecoder()

let cluster: Embedded | undefined
const raws: NatsConnection[] = []

const send = serveParent<StartHost, FromHost>({
  async start(cfg, signal) {
    const t0 = performance.now()
    let lastReport = 0
    const progress = () => {
      const now = performance.now()
      if (now - lastReport < 500) return
      lastReport = now
      send({ type: 'progress', workers: cluster?.workers.size ?? 0, raw: raws.length })
    }

    const c = await startEmbedded({
      log,
      buses: natsBuses({ url: cfg.natsUrl, log, connectTimeoutMs: 20_000, connect: { insecure: true } }),
      defaults: { region: cfg.region, heartbeatMs: cfg.heartbeatMs },
      queenKey: cfg.queenKey,
    })
    cluster = c
    const workerErrors = await eachLimited(cfg.nodeIds, cfg.parallelism, async (nodeId) => {
      if (signal.aborted) return
      // Resolves once the task subscription is at the server.
      await c.addWorker({ nodeId, labels: { bench: 'fanout' } })
      progress()
    })
    if (workerErrors.length > 0) throw new Error(`${workerErrors.length} workers failed to start; first: ${errorMessage(workerErrors[0])}`)

    const rawErrors = await eachLimited(cfg.nodeIds, cfg.parallelism, async (nodeId) => {
      if (signal.aborted) return
      // The same connection options as the bus's, so both sides of the comparison pay alike.
      const nc = await connect({
        servers: cfg.natsUrl,
        name: `bench-raw:${nodeId}`,
        timeout: 20_000,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        pingInterval: 10_000,
      })
      raws.push(nc)
      const reply = enc.encode(JSON.stringify({ accepted: true, by: nodeId }))
      nc.subscribe(`${cfg.rawPrefix}.${nodeId}`, {
        callback: (err, m) => {
          if (err) return
          // Read the body as a worker reads a task, then answer with a small JSON.
          try {
            JSON.parse(dec.decode(m.data))
          } catch {
            return
          }
          m.respond(reply)
        },
      })
      await nc.flush()
      progress()
    })
    if (rawErrors.length > 0) throw new Error(`${rawErrors.length} raw responders failed to connect; first: ${errorMessage(rawErrors[0])}`)

    send({ type: 'ready', workers: c.workers.size, raw: raws.length, ms: Math.round(performance.now() - t0) })
  },

  async stop() {
    await cluster?.close()
    await eachLimited(raws, 32, async (nc) => {
      await nc.drain().catch(() => nc.close())
    })
    log.flush()
  },
})
