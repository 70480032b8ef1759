import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { decode, Heartbeat, subjects } from '@apiary/shared'
import { readSecretFile, silentLogger } from '@apiary/shared/runtime'
import { createNatsBus } from '@apiary/shared/nats'
import { createJobClient, type JobClient } from '@apiary/shared/client'
import { type RoleProc, startRole } from './roles.ts'
import { type BenchContext, progress } from './run.ts'
import { raceExit } from './wait.ts'

/**
 * Node flags that write .cpuprofile files to `dir` (made if missing); none without a dir.
 * No --cpu-prof-name: tsx's loader runs on its own thread and would overwrite the main
 * thread's profile. Node's default names hold pid and thread id; the pids are printed.
 */
export function cpuProfFlags(dir: string | undefined): string[] {
  if (!dir) return []
  mkdirSync(dir, { recursive: true })
  return ['--cpu-prof', '--cpu-prof-dir', dir]
}

export interface Daemons {
  queen: RoleProc
  hive: RoleProc
  queenUrl: string
  tokenFile: string
  /** The queen's job client (60 s timeout). */
  client: JobClient
}

/**
 * The queen and one hive as their own OS processes, started from their bins as deployed, on
 * `natsUrl`; the queen keeps its state in `stateDir`. Resolves once the queen listens and the
 * hive's first heartbeat is on the bus. Their pids go to `ctx.pids`, their ends to the teardown.
 */
export async function startQueenAndHive(
  o: { natsUrl: string; stateDir: string; region: string; heartbeatMs: number; profileDir: string | undefined },
  ctx: BenchContext,
): Promise<Daemons> {
  const { signal, teardown, pids } = ctx
  progress('starting the queen')
  // At info: its URL is on the `queen listening` line, which `warn` would hide. At info it writes
  // two lines per job (submitted, finished) and one per node coming online.
  const queen = startRole('queen', 'apiary-queen', ['--nats', o.natsUrl, '--insecure-bus', '--port', '0', '--state-dir', o.stateDir], { APIARY_LOG_LEVEL: 'info' }, cpuProfFlags(o.profileDir))
  pids.add(queen.pid)
  teardown.add('queen', () => queen.stop(15_000))
  const listening = await queen.waitForLine(/queen listening/, 30_000, signal)
  const queenUrl = (JSON.parse(listening) as { url?: unknown }).url
  if (typeof queenUrl !== 'string') throw new Error(`the queen's "queen listening" line has no url: ${listening}`)
  const tokenFile = join(o.stateDir, 'token')
  const client = createJobClient({ url: queenUrl, token: await readSecretFile(tokenFile, 'token'), timeoutMs: 60_000 })
  teardown.add('job client', () => client.close())

  progress('starting the hive')
  const hiveBeat = await firstHiveHeartbeat(o.natsUrl, o.region)
  teardown.add('heartbeat watch', () => hiveBeat.stop())
  const hive = startRole('hive', 'apiary-hive', ['--nats', o.natsUrl, '--insecure-bus', '--queen-key', join(o.stateDir, 'signing.pub'), '--region', o.region, '--heartbeat', `${o.heartbeatMs}ms`, '--id', 'hive-bench-1'], { APIARY_LOG_LEVEL: 'warn' }, cpuProfFlags(o.profileDir))
  pids.add(hive.pid)
  teardown.add('hive', () => hive.stop(15_000))
  await raceExit(hiveBeat.seen, hive, 30_000, signal, 'the hive’s first heartbeat')
  await hiveBeat.stop()
  if (o.profileDir) progress(`CPU profiles go to ${o.profileDir}: queen pid ${queen.pid}, hive pid ${hive.pid} (CPU.<date>.<time>.<pid>.<thread>.*.cpuprofile; thread 0 is the main one)`)
  return { queen, hive, queenUrl, tokenFile, client }
}

/** Subscribes to heartbeats; `seen` resolves on the first one from a hive of `region`. */
async function firstHiveHeartbeat(natsUrl: string, region: string): Promise<{ seen: Promise<void>; stop(): Promise<void> }> {
  const log = silentLogger()
  const bus = await createNatsBus({ url: natsUrl, name: 'bench-heartbeat-watch', log, insecure: true })
  let resolveSeen!: () => void
  const seen = new Promise<void>((r) => (resolveSeen = r))
  const sub = bus.subscribe(subjects.heartbeatAll, (msg) => {
    const hb = decode(Heartbeat, msg, log)
    if (hb?.role === 'hive' && hb.region === region) resolveSeen()
  })
  await bus.flush()
  let stopped: Promise<void> | undefined
  return {
    seen,
    stop: () =>
      (stopped ??= (async () => {
        sub.unsubscribe()
        await bus.close()
      })()),
  }
}
