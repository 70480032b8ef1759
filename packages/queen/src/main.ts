import { loadOrCreateSigningKey, publicKeyPath, runProgram } from '@apiary/shared/runtime'
import { createNatsBus } from '@apiary/shared/nats'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { parseQueenConfig, QUEEN_OPTIONS } from './config.ts'
import { rebuildIndex, startQueen } from './index.ts'

await runProgram({
  program: 'apiary-queen',
  component: 'queen',
  about: `apiary-queen: the HTTP API, job store and event log of an apiary cluster

usage: apiary-queen [--nats URL --nats-creds FILE] [--host ADDR] [--port PORT] [--state-dir DIR]

Node events reach it through a JetStream stream and every job it runs is written to the job
log before its own index: run two or more queens (each its own --queen-id and --state-dir) on
one NATS and one leads while the others serve reads and event streams from their indexes and
take over within seconds of the leader's end (--lease-ttl). --rebuild-index rebuilds this
queen's index from the job log.

On NATS it authenticates with one credential file (--nats-creds, --nats-user-file or
--nats-token-file), over TLS with --nats-ca or a tls:// URL; it refuses an unauthenticated bus
unless given --insecure-bus. It signs the work it sends: hives and workers pin the public key it
logs at start (--queen-key on them; the file <signing key>.pub).`,
  options: QUEEN_OPTIONS,
  config: parseQueenConfig,
  async start(c, log) {
    // The key first: a queen that cannot sign must not meet the bus.
    const { signer, created } = await loadOrCreateSigningKey(c.signingKeyFile)
    log.info(
      { publicKey: signer.publicKey, publicKeyFile: publicKeyPath(c.signingKeyFile), created },
      created ? 'created a work-signing key: pin its public key on every hive and worker (--queen-key)' : 'work-signing key loaded',
    )
    const bus = c.natsUrl
      ? await createNatsBus({ url: c.natsUrl, name: 'apiary-queen', log, identity: { role: 'queen', id: c.queenId }, ...c.nats })
      : createMemoryBus(log)
    if (!c.natsUrl) log.warn('no --nats given: using an in-process bus, so no hive or worker can reach this queen (use keeper dev for a one-process cluster)')
    const durable = { replicas: c.replicas, logMaxAgeMs: c.retentionMs, leaseTtlMs: c.leaseTtlMs }
    if (c.rebuildIndex) {
      const done = await rebuildIndex({ bus, log, stateDir: c.stateDir, durable }).catch(async (err: unknown) => {
        await bus.close()
        throw err
      })
      log.info(done, 'rebuilt the job index from the job log')
    }
    const queen = await startQueen({
      bus,
      log,
      queenId: c.queenId,
      durable,
      signer,
      stateDir: c.stateDir,
      host: c.host,
      port: c.port,
      tokenFile: c.tokenFile,
      ...(c.inventoryFile ? { inventoryFile: c.inventoryFile } : {}),
    }).catch(async (err: unknown) => {
      // An open NATS connection would keep the failed process alive.
      await bus.close()
      throw err
    })
    process.on('SIGHUP', () => void queen.reloadInventory())
    return {
      async close() {
        await queen.close()
        await bus.close()
      },
    }
  },
})
