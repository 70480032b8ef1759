import { busLink, createMetrics, healthFromFlags, readQueenKey, runProgram, serveOps } from '@apiary/shared/runtime'
import { createNatsBus } from '@apiary/shared/nats'
import { HIVE_OPTIONS, parseHiveConfig } from './config.ts'
import { HIVE_METRICS, startHive } from './index.ts'

await runProgram({
  program: 'apiary-hive',
  component: 'hive',
  about: `apiary-hive: rolls out one region's share of each job to its workers

usage: apiary-hive --nats URL --nats-creds FILE --queen-key KEY|FILE --region R [--id ID]

Run several with the same --region for redundancy: each job share goes to one of them. It
authenticates to NATS with one credential file (or runs without, told --insecure-bus) and takes
only work signed by the queen whose public key --queen-key pins.

With --metrics-port it serves /metrics (Prometheus; with --metrics-token-file only to that
bearer token), /healthz and /readyz (ready: connected and heartbeating, not draining);
--health asks that /readyz. On SIGTERM it takes no new share, dispatches nothing more and hands
its shares back (its last heartbeat says it left, so another hive of the region takes them
over at once), then exits 0.`,
  options: HIVE_OPTIONS,
  config: parseHiveConfig,
  graceMs: (c) => c.ops.drainGraceMs,
  health: (v) => healthFromFlags(v, 'apiary-hive'),
  async start(c, log) {
    const queenKey = await readQueenKey(c.queenKey)
    const metrics = createMetrics('hive', [...HIVE_METRICS, 'busConnected', 'busReconnects'], { process: true })
    const link = busLink(metrics)
    const bus = await createNatsBus({ url: c.natsUrl, name: `apiary-hive:${c.hiveId}`, log, identity: { role: 'hive', id: c.hiveId, region: c.region }, onStatus: link.onStatus, ...c.nats })
    const hive = startHive({ bus, log, hiveId: c.hiveId, region: c.region, heartbeatMs: c.heartbeatMs, queenKey, metrics })
    const ops = await serveOps(c.ops.metrics, { metrics, notReady: () => (link.connected() ? hive.notReady() : 'bus disconnected'), log }).catch(async (err: unknown) => {
      await hive.close()
      await bus.close()
      throw err
    })
    log.info({ hiveId: c.hiveId, region: c.region, queenKey: queenKey.publicKey }, 'hive ready')
    return {
      async close() {
        await hive.drain(c.ops.drainGraceMs)
        await bus.close()
        await ops?.close()
        log.info('drained')
      },
    }
  },
})
