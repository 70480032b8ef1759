/**
 * A child process of the rollout benchmark: hosts a slice of the simulated agent fleet
 * (test/fleet/agents.ts) on a few NATS connections, so the benchmark process stays light.
 *
 * Started with `fork()` and `--import tsx`; talks to the parent only over IPC (protocol.ts).
 * Exits by itself if the parent goes away.
 */
import { errorMessage } from '@apiary/shared'
import { createLogger } from '@apiary/shared/runtime'
import { type AgentFleet, startAgentFleet } from '../../test/fleet/agents.ts'
import type { FromFleet, StartFleet, ToFleet } from './protocol.ts'

const log = createLogger({ component: 'bench-fleet', level: process.env.APIARY_LOG_LEVEL ?? 'warn' })

let fleet: AgentFleet | undefined
let started = false
let stopping: Promise<void> | undefined

function send(m: FromFleet): void {
  if (process.connected) process.send!(m)
}

async function start(cfg: StartFleet): Promise<void> {
  const t0 = performance.now()
  fleet = await startAgentFleet({
    natsUrl: cfg.natsUrl,
    count: cfg.count,
    first: cfg.first,
    region: cfg.region,
    prefix: cfg.prefix,
    connections: cfg.connections,
    failRate: cfg.failRate,
    heartbeatMs: cfg.heartbeatMs,
    durationMs: cfg.durationMs,
    labels: { bench: 'rollout' },
    log,
  })
  if (stopping) return
  send({ type: 'ready', ms: Math.round(performance.now() - t0) })
}

function stop(): Promise<void> {
  stopping ??= (async () => {
    await fleet?.close()
    log.flush()
  })()
  return stopping
}

process.on('message', (m: ToFleet) => {
  switch (m.type) {
    case 'start':
      if (started) return
      started = true
      start(m).catch((err: unknown) => send({ type: 'failed', error: errorMessage(err) }))
      return
    case 'configure':
      if (!fleet) return send({ type: 'failed', error: 'configure before the fleet started' })
      fleet.setFailRate(m.failRate)
      fleet.setOutputLines(m.outputLines)
      return send({ type: 'configured', id: m.id, failing: fleet.failing().length })
    case 'stop': {
      void stop().then(() => {
        const stats = fleet?.stats() ?? { tasks: 0, refused: 0, events: 0, heartbeats: 0, running: 0 }
        send({ type: 'stopped', maxRssKb: process.resourceUsage().maxRSS, stats })
        process.disconnect()
        process.exit(0)
      })
      return
    }
  }
})

// The parent died or cut the channel: nobody is left to tell us to stop.
process.on('disconnect', () => {
  const t = setTimeout(() => process.exit(1), 5000)
  t.unref()
  void stop().then(() => process.exit(0))
})
