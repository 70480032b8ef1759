/**
 * A child process of the fan-out benchmark. It hosts a slice of the simulated fleet: for each
 * node id, one real apiary agent worker (`startWorker` on its own NATS connection, as a real
 * node has) and one plain NATS responder for the raw baseline (also its own connection).
 *
 * Started with `fork()` and `--import tsx`; talks to the parent only over IPC (protocol.ts).
 * Exits by itself if the parent goes away.
 */
import { type Bus, errorMessage } from '@apiary/shared'
import { createLogger } from '@apiary/shared/runtime'
import { createNatsBus } from '@apiary/shared/nats'
import { startWorker, type Worker } from '@apiary/worker'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { eachLimited } from './pool.ts'
import type { FromHost, StartHost, ToHost } from './protocol.ts'

const log = createLogger({ component: 'bench-host', level: process.env.APIARY_LOG_LEVEL ?? 'warn' })
const enc = new TextEncoder()
const dec = new TextDecoder()

const workers: Array<{ worker: Worker; bus: Bus }> = []
const raws: NatsConnection[] = []
let started = false
let stopping: Promise<void> | undefined

function send(m: FromHost): void {
  if (process.connected) process.send!(m)
}

async function start(cfg: StartHost): Promise<void> {
  const t0 = performance.now()
  let lastReport = 0
  const progress = () => {
    const now = performance.now()
    if (now - lastReport < 500) return
    lastReport = now
    send({ type: 'progress', workers: workers.length, raw: raws.length })
  }

  const workerErrors = await eachLimited(cfg.nodeIds, cfg.parallelism, async (nodeId) => {
    if (stopping) return
    const bus = await createNatsBus({ url: cfg.natsUrl, name: `apiary-worker:${nodeId}`, log, connectTimeoutMs: 20_000 })
    const worker = startWorker({ bus, log, nodeId, region: cfg.region, labels: { bench: 'fanout' }, heartbeatMs: cfg.heartbeatMs })
    workers.push({ worker, bus })
    // The task subscription is at the server once this resolves.
    await bus.flush()
    progress()
  })
  if (workerErrors.length > 0) throw new Error(`${workerErrors.length} workers failed to start; first: ${errorMessage(workerErrors[0])}`)

  const rawErrors = await eachLimited(cfg.nodeIds, cfg.parallelism, async (nodeId) => {
    if (stopping) return
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

  send({ type: 'ready', workers: workers.length, raw: raws.length, ms: Math.round(performance.now() - t0) })
}

function stop(): Promise<void> {
  stopping ??= (async () => {
    await eachLimited(workers, 32, async ({ worker, bus }) => {
      await worker.close()
      await bus.close()
    })
    await eachLimited(raws, 32, async (nc) => {
      await nc.drain().catch(() => nc.close())
    })
    log.flush()
  })()
  return stopping
}

process.on('message', (m: ToHost) => {
  if (m.type === 'start' && !started) {
    started = true
    start(m).catch((err: unknown) => send({ type: 'failed', error: errorMessage(err) }))
  } else if (m.type === 'stop') {
    void stop().then(() => {
      send({ type: 'stopped', maxRssKb: process.resourceUsage().maxRSS })
      process.disconnect()
      process.exit(0)
    })
  }
})

// The parent died or cut the channel: nobody is left to tell us to stop.
process.on('disconnect', () => {
  const t = setTimeout(() => process.exit(1), 5000)
  t.unref()
  void stop().then(() => process.exit(0))
})
