import { type Bus, errorMessage, type ExecOperation, type Facts, type HostReach, type Logger, subjects, type Verifier, VERSION } from '@apiary/shared'
import { type DaemonMetrics, Heartbeater } from '@apiary/shared/runtime'
import { type InventoryNode } from '@apiary/shared/inventory'
import { type ExecHooks, type ExecResult, stoppedResult } from './executors/executor.ts'
import { poolKey, type SshPool, type SshTarget } from './executors/ssh/pool.ts'
import { runSsh } from './executors/ssh/ssh.ts'
import { taskClaims } from './claims.ts'
import { type Journal, memoryJournal } from './journal.ts'
import { okResult, RUNNER_METRICS, startTaskRunner } from './runner.ts'

/** Host reachability reports per heartbeat at most (the queen takes up to 10,000). */
export const HOSTS_PER_BEAT = 5_000

export interface SshWorkerConfig {
  bus: Bus
  log: Logger
  /** Unique among the region's SSH workers (they share the region's queue group). */
  id: string
  region: string
  heartbeatMs: number
  /** The current inventory (the last good one): the nodes this worker may reach. */
  inventory: () => ReadonlyMap<string, InventoryNode>
  pool: SshPool
  /** The queen's public key: only work it signed runs. */
  queenKey: Verifier
  /** The most tasks running at once (default 4,096; the pool's own caps still apply). */
  maxTasks?: number
  /** SIGTERM → SIGKILL grace for a stopped remote process group. */
  killGraceMs?: number
  /**
   * What this SSH worker took for its hosts and how each task ended (`openJournal`), closed
   * with the worker; by default one in memory, which a restart forgets.
   */
  journal?: Journal
  /** Where what it runs is counted (`createMetrics('ssh-worker', SSH_WORKER_METRICS)`). */
  metrics?: DaemonMetrics<SshWorkerMetricKey>
}

/** The metrics an SSH worker keeps: an agent's, and its pool's. */
export const SSH_WORKER_METRICS = [...RUNNER_METRICS, 'tasksInFlight', 'draining', 'sshConnections', 'sshOpenBreakers'] as const
export type SshWorkerMetricKey = (typeof SSH_WORKER_METRICS)[number]

export interface SshWorker {
  id: string
  running(): number
  close(): Promise<void>
  /**
   * As an agent's `drain` (the running ones finish within `graceMs` or are stopped), except that
   * it leaves the region's queue group at once rather than refuse new tasks: NATS hands them to
   * the region's other SSH workers (with none left, a task finds no responder).
   */
  drain(graceMs: number): Promise<void>
  /** Why it would not take a task now, or null: its /readyz. */
  notReady(): string | null
}

/**
 * An SSH worker: takes its region's tasks for agentless nodes from the region's queue group
 * and runs them over pooled SSH connections. Its heartbeat tells the queen which hosts it
 * reached and the state of their circuit breakers. It runs a task only once it holds the
 * task's claim in the region's claims bucket (`bus.durable.claims`), which the region's other
 * SSH workers check too; without the bucket it refuses every task.
 *
 * @example startSshWorker({ bus, log, id: 'ssh-eu-1', region: 'eu', heartbeatMs: 5000, inventory: () => nodes, pool })
 */
export function startSshWorker(cfg: SshWorkerConfig): SshWorker {
  const { bus, pool } = cfg
  const log = cfg.log.child({ sshWorker: cfg.id, region: cfg.region })
  const target = (n: InventoryNode): SshTarget => ({
    id: n.id,
    host: n.address,
    port: n.port,
    user: n.user,
    ...(n.identityFile ? { keyFile: n.identityFile } : {}),
    ...(n.passphraseFile ? { passphraseFile: n.passphraseFile } : {}),
  })
  const runner = startTaskRunner({
    bus,
    log,
    id: cfg.id,
    subject: subjects.ssh(cfg.region),
    queue: subjects.sshQueue(cfg.region),
    region: cfg.region,
    queenKey: cfg.queenKey,
    agentless: true,
    eventSubject: (node, jobId) => subjects.sshEvents(cfg.region, node, jobId),
    maxRunning: cfg.maxTasks ?? 4096,
    journal: cfg.journal ?? memoryJournal({ log }),
    // The region's SSH workers share one claim per (job, node): whichever the queue group hands
    // a re-offer to, the host runs the task once.
    claims: taskClaims({ store: bus.durable.claims, region: cfg.region, id: cfg.id, log }),
    ...(cfg.metrics ? { metrics: cfg.metrics } : {}),
    admit(task) {
      const n = cfg.inventory().get(task.node)
      if (!n) return `node ${task.node} is not in this SSH worker's inventory`
      if (n.region !== cfg.region) return `node ${task.node} is in region ${n.region}, not ${cfg.region}`
      return null
    },
    async execute(task, signal, hooks) {
      const n = cfg.inventory().get(task.node)
      if (!n) return failed('error', `node ${task.node} left the inventory`)
      const t = target(n)
      const base = { pool, target: t, capBytes: task.outputCapBytes, signal, killGraceMs: cfg.killGraceMs ?? 2000 }
      switch (task.operation.type) {
        case 'ping': {
          try {
            const lease = await pool.acquire(t, signal)
            lease.release()
            return okResult({ pong: true })
          } catch (err) {
            return signal.aborted ? stoppedResult(signal, { bytes: 0, truncated: false, digest: null }, null, null) : failed('error', errorMessage(err))
          }
        }
        case 'facts':
          return remoteFacts(base, hooks)
        case 'exec': {
          const env = { APIARY_JOB_ID: task.jobId, APIARY_NODE_ID: task.node, ...task.operation.env }
          return runSsh({ ...base, op: { ...task.operation, env } }, hooks)
        }
      }
    },
  })

  // Reachability goes to the queen with the heartbeat: the hosts whose state changed, and every
  // twelfth beat all of them, so a restarted queen learns what nothing changes.
  const sent = new Map<string, string>()
  let beats = 0
  const changedHosts = (): HostReach[] => {
    if (beats++ % 12 === 0) sent.clear()
    const byKey = new Map<string, string[]>()
    for (const n of cfg.inventory().values()) {
      if (n.region !== cfg.region) continue
      const key = poolKey({ user: n.user, host: n.address, port: n.port })
      const ids = byKey.get(key) ?? []
      ids.push(n.id)
      byKey.set(key, ids)
    }
    const out: HostReach[] = []
    for (const h of pool.hosts()) {
      for (const id of byKey.get(h.key) ?? []) {
        const reach: HostReach = { id, lastContact: h.lastContact, breaker: h.breaker, consecutiveFailures: h.consecutiveFailures }
        const text = `${reach.lastContact}/${reach.breaker}/${reach.consecutiveFailures}`
        if (sent.get(id) === text) continue
        // The rest go with the next beats: a beat stays well under the server's max payload.
        if (out.length >= HOSTS_PER_BEAT) return out
        sent.set(id, text)
        out.push(reach)
      }
    }
    return out
  }
  const heart = new Heartbeater(bus, log, () => ({
    id: cfg.id,
    role: 'ssh-worker',
    region: cfg.region,
    labels: {},
    executor: 'ssh',
    status: 'healthy',
    running: runner.running(),
    version: VERSION,
    intervalMs: cfg.heartbeatMs,
    ts: Date.now(),
    hosts: changedHosts(),
    refused: runner.refusals(),
    ...(runner.draining() ? { draining: true as const } : {}),
  })).start()

  cfg.metrics?.onScrape(() => {
    const m = cfg.metrics!.m
    m.tasksInFlight.set(runner.running())
    m.draining.set(runner.draining() ? 1 : 0)
    m.sshConnections.set(pool.stats().connections)
    m.sshOpenBreakers.set(pool.hosts().filter((h) => h.breaker !== 'closed').length)
  })
  return {
    id: cfg.id,
    running: () => runner.running(),
    async close() {
      heart.stop()
      await runner.close()
    },
    async drain(graceMs) {
      const drained = runner.drain(graceMs)
      // At once, not at the next beat: the queen stops targeting it.
      heart.now()
      await drained
      heart.stop()
    },
    notReady: () => (runner.draining() ? 'draining' : heart.beating ? null : 'not heartbeating'),
  }
}

function failed(state: 'error', cause: string): ExecResult {
  return { state, exitCode: null, signal: null, cause, bytes: 0, truncated: false, digest: null }
}

/** One POSIX shell script that prints the facts as key=value lines, from /proc and uname. */
const FACTS_SCRIPT = [
  'printf "hostname=%s\\n" "$(hostname)"',
  '( . /etc/os-release 2>/dev/null; printf "os=%s\\n" "${PRETTY_NAME:-$(uname -s)}" )',
  'printf "platform=%s\\n" "$(uname -s | tr "[:upper:]" "[:lower:]")"',
  'printf "kernel=%s\\n" "$(uname -r)"',
  'printf "arch=%s\\n" "$(uname -m)"',
  'printf "cpus=%s\\n" "$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc)"',
  'printf "model=%s\\n" "$(sed -n "s/^model name[^:]*: //p" /proc/cpuinfo 2>/dev/null | head -n 1)"',
  'awk \'/^MemTotal:/ { print "memtotal=" $2 * 1024 } /^MemAvailable:/ { print "memavail=" $2 * 1024 }\' /proc/meminfo 2>/dev/null',
  'printf "uptime=%s\\n" "$(cut -d" " -f1 /proc/uptime 2>/dev/null)"',
  'printf "load=%s\\n" "$(cut -d" " -f1-3 /proc/loadavg 2>/dev/null)"',
].join('; ')

const ARCH: Record<string, string> = { x86_64: 'x64', amd64: 'x64', aarch64: 'arm64', armv7l: 'arm', i686: 'ia32' }

/** Facts of a remote node, typed like the agent's (`collectFacts`). */
async function remoteFacts(base: { pool: SshPool; target: SshTarget; capBytes: number; signal: AbortSignal; killGraceMs: number }, hooks: ExecHooks): Promise<ExecResult> {
  let text = ''
  const op: ExecOperation = { type: 'exec', shell: true, command: FACTS_SCRIPT }
  const r = await runSsh({ ...base, op, capBytes: 64 * 1024 }, { onStart: hooks.onStart, onOutput: (c) => (text += c.stream === 'stdout' ? c.data : '') })
  if (r.state !== 'ok') return r
  const kv = new Map<string, string>()
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=')
    if (eq > 0) kv.set(line.slice(0, eq), line.slice(eq + 1).trim())
  }
  const num = (k: string) => Number(kv.get(k) ?? NaN) || 0
  const load = (kv.get('load') ?? '').split(' ').map(Number)
  const arch = kv.get('arch') ?? ''
  const facts: Facts = {
    hostname: kv.get('hostname') ?? '',
    os: kv.get('os') ?? '',
    platform: kv.get('platform') ?? '',
    kernel: kv.get('kernel') ?? '',
    arch: ARCH[arch] ?? arch,
    cpus: { count: num('cpus'), model: kv.get('model') || 'unknown' },
    memory: { totalBytes: num('memtotal'), availableBytes: num('memavail') },
    uptimeSeconds: Math.round(num('uptime')),
    loadAverage: [load[0] || 0, load[1] || 0, load[2] || 0],
  }
  return { ...r, bytes: 0, digest: null, result: facts }
}
