import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { chmod, chown, copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Identity } from '@apiary/shared'
import { createJobClient, type JobClient } from '@apiary/shared/client'
import { expectAccounted, finished, freePort, ROOT, type SecureBus, startSecureBus, type TempDir, tempDir, waitUntil } from '../harness/index.ts'

/** The images' user (deploy/Dockerfile). */
const UID = 10001
const IDS: Identity[] = [
  { role: 'queen', id: 'queen' },
  { role: 'hive', id: 'hive-eu-1', region: 'eu' },
  { role: 'worker', id: 'web-1', region: 'eu' },
]

/**
 * Running a daemon as its image does needs root here (a mount namespace whose root filesystem
 * is read-only, then the images' uid); without root or util-linux's unshare and setpriv, this
 * suite cannot set that up and is skipped, saying why.
 */
const canRun = process.getuid?.() === 0 && ['unshare', 'setpriv'].every((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0)

interface Daemon {
  child: ChildProcess
  output(): string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * Starts `packages/<pkg>/bin/<bin>.mjs` exactly as its image's CMD does: no flags, configuration
 * only from `env` (nothing inherited but PATH), as uid 10001, in a mount namespace where the
 * root filesystem is read-only and only `stateDir` is writable. `unshare` and `setpriv` exec
 * into node: a signal to the child reaches the daemon itself, as tini passes it in a container.
 */
function startAsImage(bin: 'apiary-queen' | 'apiary-hive' | 'apiary-worker', stateDir: string, env: Record<string, string>): Daemon {
  const pkg = bin.replace(/^apiary-/, '')
  const script = [
    `mount --bind "$STATE" "$STATE"`,
    'mount -o remount,bind,ro /',
    `exec setpriv --reuid=${UID} --regid=${UID} --clear-groups --inh-caps=-all node "packages/${pkg}/bin/${bin}.mjs"`,
  ].join(' && ')
  const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: stateDir, STATE: stateDir, APIARY_STATE_DIR: stateDir, APIARY_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-256 * 1024)))
  child.stderr?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-256 * 1024)))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  return { child, output: () => out, exited }
}

/** The images' HEALTHCHECK: `node deploy/probe.mjs ROLE`, with the daemon's environment. */
function probe(role: 'queen' | 'hive' | 'worker', env: Record<string, string>): number | null {
  return spawnSync(process.execPath, [join(ROOT, 'deploy', 'probe.mjs'), role], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 10_000 }).status
}

/** Waits for the daemon's health check to pass (a probe costs a node process: every 250 ms); fails with the daemon's output. */
async function healthy(d: Daemon, role: 'queen' | 'hive' | 'worker', env: Record<string, string>): Promise<void> {
  try {
    await waitUntil(() => d.child.exitCode !== null || probe(role, env) === 0, `the ${role}'s health check to pass`, 30_000, 250)
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${d.output()}`, { cause: err })
  }
  if (d.child.exitCode !== null) throw new Error(`the ${role} exited ${d.child.exitCode}\n${d.output()}`)
}

/** A directory the images' user owns, mode 0700, as the image makes /var/lib/apiary. */
async function ownDir(path: string): Promise<string> {
  await mkdir(path, { recursive: true })
  await chown(path, UID, UID)
  await chmod(path, 0o700)
  return path
}

describe.skipIf(!canRun)('each daemon run as its image runs it: environment only, non-root, read-only root, probes, SIGTERM', () => {
  let tmp: TempDir
  let bus: SecureBus
  const daemons: Daemon[] = []
  const state = { queen: '', hive: '', worker: '' }
  const env = { queen: {} as Record<string, string>, hive: {} as Record<string, string>, worker: {} as Record<string, string> }
  let client: JobClient | undefined

  beforeAll(async () => {
    tmp = await tempDir('image-contract')
    await chmod(tmp.path, 0o755)
    bus = await startSecureBus(tmp.path, IDS)
    // The credentials as the image's user holds them (compose's init, Kubernetes' first container).
    const secrets = await ownDir(join(tmp.path, 'secrets'))
    const mine = async (who: Identity) => {
      const to = join(secrets, `${who.id}.creds`)
      await copyFile(bus.creds(who), to)
      await chown(to, UID, UID)
      await chmod(to, 0o600)
      return to
    }
    for (const role of ['queen', 'hive', 'worker'] as const) state[role] = await ownDir(join(tmp.path, role))
    const metricsToken = join(secrets, 'metrics.token')
    await writeFile(metricsToken, 'metrics-token-0123456789abcdef', { mode: 0o600 })
    await chown(metricsToken, UID, UID)
    const common = { APIARY_NATS_URL: bus.url, APIARY_DRAIN_GRACE: '10s' }
    env.queen = { ...common, APIARY_NATS_CREDS: await mine(IDS[0]!), APIARY_HOST: '127.0.0.1', APIARY_PORT: String(await freePort()), APIARY_QUEEN_ID: 'queen' }
    env.hive = {
      ...common,
      APIARY_NATS_CREDS: await mine(IDS[1]!),
      APIARY_REGION: 'eu',
      APIARY_HIVE_ID: 'hive-eu-1',
      APIARY_QUEEN_KEY: join(state.queen, 'signing.pub'),
      APIARY_METRICS_PORT: String(await freePort()),
      APIARY_METRICS_TOKEN_FILE: metricsToken,
    }
    env.worker = {
      ...common,
      APIARY_NATS_CREDS: await mine(IDS[2]!),
      APIARY_REGION: 'eu',
      APIARY_NODE_ID: 'web-1',
      APIARY_LABELS: 'role=web',
      APIARY_QUEEN_KEY: join(state.queen, 'signing.pub'),
      APIARY_METRICS_PORT: String(await freePort()),
      APIARY_METRICS_TOKEN_FILE: metricsToken,
    }
  })

  afterAll(async () => {
    await client?.close()
    for (const d of daemons) if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGKILL')
    await Promise.all(daemons.map((d) => d.exited))
    await bus?.stop()
    await tmp?.remove()
  })

  it('starts the queen, a hive and a worker from APIARY_* variables alone; each answers its image’s health check', async () => {
    const queen = startAsImage('apiary-queen', state.queen, { ...env.queen, APIARY_REPLICAS: '1' })
    daemons.push(queen)
    await healthy(queen, 'queen', env.queen)
    for (const role of ['hive', 'worker'] as const) {
      const d = startAsImage(role === 'hive' ? 'apiary-hive' : 'apiary-worker', state[role], env[role])
      daemons.push(d)
      await healthy(d, role, env[role])
    }
    // A probe of a port nothing answers on fails.
    expect(probe('worker', { APIARY_METRICS_PORT: String(await freePort()) })).toBe(1)
  })

  it('runs a job end to end, and keeps state only in each state directory: the images’ user’s files, 0600', async () => {
    const token = (await readFile(join(state.queen, 'token'), 'utf8')).trim()
    client = createJobClient({ url: `http://127.0.0.1:${env.queen.APIARY_PORT}`, token })
    await waitUntil(async () => (await client!.nodes()).some((n) => n.id === 'web-1' && n.online), 'web-1 to be online', 30_000)
    const { jobId, nodes } = await client.submit({ operation: { type: 'exec', argv: ['id', '-u'] }, targets: 'role=web' })
    const events = []
    for await (const ev of client.stream(jobId, { output: true })) events.push(ev)
    expectAccounted(events, nodes)
    expect(finished(events).state).toBe('ok')
    // The command ran as the images' user, not root.
    expect(events.filter((e) => e.kind === 'node.output').map((e) => (e as { data: string }).data).join('')).toBe(`${UID}\n`)
    for (const role of ['queen', 'hive', 'worker'] as const) {
      const dir = await stat(state[role])
      expect([dir.uid, dir.mode & 0o777], role).toEqual([UID, 0o700])
      for (const f of await readdir(state[role], { recursive: true })) {
        const s = await stat(join(state[role], f))
        if (!s.isFile() || f.endsWith('.pub')) continue
        expect([f, s.uid, s.mode & 0o777], `${role}: ${f}`).toEqual([f, UID, 0o600])
      }
    }
    expect(await readdir(state.queen)).toEqual(expect.arrayContaining(['queen.db', 'token', 'signing.key', 'audit.db']))
  })

  it('drains each on SIGTERM and exits 0: worker, hive, then queen', async () => {
    const [queen, hive, worker] = daemons as [Daemon, Daemon, Daemon]
    for (const [name, d] of [['worker', worker], ['hive', hive], ['queen', queen]] as const) {
      d.child.kill('SIGTERM')
      expect(await d.exited, `${name}\n${d.output()}`).toEqual({ code: 0, signal: null })
    }
  })
})
