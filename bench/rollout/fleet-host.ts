/**
 * A child process of the rollout benchmark: hosts a slice of the simulated agent fleet
 * (test/fleet/agents.ts) on a few NATS connections, so the benchmark process stays light.
 *
 * Forked by fleets.ts; talks to the parent only over IPC (protocol.ts, bench/lib/child-host.ts).
 * Exits by itself if the parent goes away.
 */
import { createLogger } from '@apiary/shared/runtime'
import { type AgentFleet, startAgentFleet } from '../../test/fleet/agents.ts'
import { serveParent } from '../lib/child-host.ts'
import type { FromFleet, ToFleet } from './protocol.ts'

const log = createLogger({ component: 'bench-fleet', level: process.env.APIARY_LOG_LEVEL ?? 'warn' })

let fleet: AgentFleet | undefined

const send = serveParent<ToFleet, FromFleet>({
  async start(cfg, signal) {
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
    if (signal.aborted) return
    send({ type: 'ready', ms: Math.round(performance.now() - t0) })
  },
  handle(m) {
    if (!fleet) return send({ type: 'failed', error: 'configure before the fleet started' })
    fleet.setFailRate(m.failRate)
    fleet.setOutputLines(m.outputLines)
    send({ type: 'configured', id: m.id, failing: fleet.failing().length })
  },
  async stop() {
    await fleet?.close()
    log.flush()
  },
  stopped: () => ({ stats: fleet?.stats() ?? { tasks: 0, refused: 0, events: 0, heartbeats: 0, running: 0 } }),
})
