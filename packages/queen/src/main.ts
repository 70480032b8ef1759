import { ApiaryError } from '@apiary/shared'
import { ensureStateDir, loadOrCreateSigningKey, type OptionTable, type OptionValues, publicKeyPath, runProgram } from '@apiary/shared/runtime'
import { createNatsBus } from '@apiary/shared/nats'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { parseQueenConfig, QUEEN_OPTIONS } from './config.ts'
import { isOfflineCommand, OFFLINE_USAGE, runOffline } from './access/offline.ts'
import { rebuildIndex, startQueen } from './index.ts'

/** HTTPS for the API: a certificate and its key, both or neither; reloaded when they change. */
const TLS_OPTIONS = {
  'tls-cert': { type: 'string', env: 'APIARY_TLS_CERT', value: 'FILE', help: 'serve HTTPS with this PEM certificate (chain); re-read when it changes, a bad new pair is refused' },
  'tls-key': { type: 'string', env: 'APIARY_TLS_KEY', value: 'FILE', help: 'the certificate’s PEM private key, mode 0600' },
} as const satisfies OptionTable

function tlsFrom(v: OptionValues<typeof TLS_OPTIONS>) {
  const [cert, key] = [v['tls-cert'], v['tls-key']]
  if (cert === undefined && key === undefined) return {}
  if (cert === undefined) throw new ApiaryError('invalid_input', '--tls-cert (or APIARY_TLS_CERT) is required with --tls-key', '--tls-cert')
  if (key === undefined) throw new ApiaryError('invalid_input', '--tls-key (or APIARY_TLS_KEY) is required with --tls-cert', '--tls-key')
  return { tls: { certFile: cert, keyFile: key } }
}

/** Users, roles and the audit log (docs/access.md). */
const ACCESS_OPTIONS = {
  'users-file': { type: 'string', env: 'APIARY_USERS_FILE', value: 'FILE', help: 'users and roles (YAML), re-read when it changes; made with one admin holding the token file’s token if missing (default: the token is the one user, admin)' },
  'audit-retention': { type: 'duration', env: 'APIARY_AUDIT_RETENTION', default: '365d', min: '30d', max: '3650d', value: 'DURATION', help: 'how long <state dir>/audit.db keeps a record (at least 30d)' },
} as const satisfies OptionTable

const accessFrom = (v: OptionValues<typeof ACCESS_OPTIONS>) => ({ auditRetentionMs: v['audit-retention'], ...(v['users-file'] ? { usersFile: v['users-file'] } : {}) })

// `apiary-queen users …` and `apiary-queen audit verify` work on the files, with no queen running.
if (isOfflineCommand(process.argv.slice(2))) {
  process.exitCode = await runOffline(process.argv.slice(2), process.env, { out: (l) => void process.stdout.write(`${l}\n`), err: (l) => void process.stderr.write(`${l}\n`) })
} else await runProgram({
  program: 'apiary-queen',
  component: 'queen',
  about: `apiary-queen: the HTTP API, job store and event log of an apiary cluster

usage: apiary-queen [--nats URL --nats-creds FILE] [--host ADDR] [--port PORT] [--state-dir DIR] [--tls-cert FILE --tls-key FILE]

Node events reach it through a JetStream stream and every job it runs is written to the job
log before its own index: run two or more queens (each its own --queen-id and --state-dir) on
one NATS and one leads while the others serve reads and event streams from their indexes and
take over within seconds of the leader's end (--lease-ttl). --rebuild-index rebuilds this
queen's index from the job log.

On NATS it authenticates with one credential file (--nats-creds, --nats-user-file or
--nats-token-file), over TLS with --nats-ca or a tls:// URL; it refuses an unauthenticated bus
unless given --insecure-bus. It signs the work it sends: hives and workers pin the public key it
logs at start (--queen-key on them; the file <signing key>.pub).

With --tls-cert and --tls-key it serves HTTPS (keeper then needs --ca for a private CA); the
pair is re-read when either file changes. Its state directory must be mode 0700 and its own.

With --users-file every request is made as a user of that file, within their roles, and every
decision goes to the hash-chained audit log <state dir>/audit.db (docs/access.md).

GET /metrics serves its metrics (Prometheus) to any signed-in user. On SIGTERM it takes no new
job (503), gives the leader lease up at once so a standby leads, ends its event streams so
clients resume on another queen, and exits 0 (within --drain-grace, or exits 1).

${OFFLINE_USAGE}`,
  options: { ...QUEEN_OPTIONS, ...TLS_OPTIONS, ...ACCESS_OPTIONS },
  config: (v, env) => ({ ...parseQueenConfig(v, env), ...tlsFrom(v), ...accessFrom(v) }),
  graceMs: (c) => c.drainGraceMs,
  async start(c, log) {
    // Before the key is made in it: a directory others may enter holds no secret of ours.
    await ensureStateDir(c.stateDir, '--state-dir')
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
      ...(c.tls ? { tls: c.tls } : {}),
      auditRetentionMs: c.auditRetentionMs,
      ...(c.usersFile ? { usersFile: c.usersFile } : {}),
      ...(c.inventoryFile ? { inventoryFile: c.inventoryFile } : {}),
      ...(c.publicUrl ? { publicUrl: c.publicUrl } : {}),
      processMetrics: true,
    }).catch(async (err: unknown) => {
      // An open NATS connection would keep the failed process alive.
      await bus.close()
      throw err
    })
    process.on('SIGHUP', () => void queen.reloadInventory())
    return {
      async close() {
        await queen.drain()
        await bus.close()
        log.info('drained')
      },
    }
  },
})
