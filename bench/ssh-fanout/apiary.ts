import { setMaxListeners } from 'node:events'
import { readFile } from 'node:fs/promises'
import { errorMessage } from '@apiary/shared'
import { createSshPool, runSsh, type SshPool } from '@apiary/worker'
import ssh2 from 'ssh2'
import { eachLimited } from '../lib/each-limited.ts'
import { machineCpu } from '../lib/procfs.ts'
import type { Outcome } from './outcome.ts'

export interface BenchNode {
  id: string
  host: string
  port: number
}

export interface ApiaryTarget {
  nodes: BenchNode[]
  user: string
  knownHosts: string
  keyFile: string
}

/**
 * A pool as an SSH worker makes it (the worker's defaults), with room for every node: at the
 * default cap of 1024 connections a warm run over more nodes would evict and reconnect.
 */
export function benchPool(t: ApiaryTarget): SshPool {
  return createSshPool({ knownHosts: t.knownHosts, keyFile: t.keyFile, maxTotal: Math.max(1024, t.nodes.length) })
}

/**
 * Runs `argv` on every node through apiary's SSH executor (`runSsh` on `pool`), at most
 * `window` at once like a hive's concurrency window. A node counts when its command ended `ok`
 * and `expect` accepts its stdout.
 */
export async function apiaryRound(
  pool: SshPool,
  t: ApiaryTarget,
  argv: string[],
  expect: (stdout: string) => boolean,
  window: number,
  limitMs: number,
  signal: AbortSignal,
): Promise<Outcome> {
  const limit = AbortSignal.any([signal, AbortSignal.timeout(limitMs)])
  // One signal for the whole round (a worker has one per task): every command in flight listens.
  setMaxListeners(0, limit)
  const failures = new Map<string, number>()
  const fail = (why: string) => failures.set(why, (failures.get(why) ?? 0) + 1)
  let ok = 0
  const cpu0 = process.cpuUsage()
  const machine0 = machineCpu().busyMs
  const t0 = performance.now()
  const errors = await eachLimited(t.nodes, window, async (n) => {
    let stdout = ''
    const r = await runSsh(
      { pool, target: { id: n.id, host: n.host, port: n.port, user: t.user }, op: { type: 'exec', argv, shell: false }, capBytes: 1 << 20, signal: limit },
      { onStart: () => undefined, onOutput: (c) => (c.stream === 'stdout' ? (stdout += c.data) : undefined) },
    )
    if (r.state !== 'ok') fail(`${r.state}: ${r.cause ?? `exit ${r.exitCode}`}`)
    else if (!expect(stdout)) fail(`unexpected output ${JSON.stringify(stdout.slice(0, 60))}`)
    else ok++
  })
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const machineCpuMs = machineCpu().busyMs - machine0
  for (const err of errors) fail(`bench error: ${errorMessage(err)}`)
  signal.throwIfAborted()
  return { ms, ok, total: t.nodes.length, cpuMs: (cpu.user + cpu.system) / 1000, machineCpuMs, failures }
}

export interface Negotiated {
  kex: string
  hostKey: string
  cipher: string
  mac: string
}

/** What ssh2 (apiary's client, with its defaults) negotiates with the node's server. */
export async function negotiated(t: ApiaryTarget, node: BenchNode): Promise<Negotiated> {
  const key = await readFile(t.keyFile)
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client()
    let got: Negotiated | undefined
    client.on('handshake', (n) => {
      // ssh2 names it srvHostKey at run time; @types/ssh2 says serverHostKey.
      const hostKey = (n as unknown as { srvHostKey?: string }).srvHostKey ?? n.serverHostKey
      got = { kex: n.kex, hostKey, cipher: n.cs.cipher, mac: n.cs.mac || '(implicit)' }
      client.end()
    })
    client.on('error', (err) => reject(new Error(`probing ${node.host}:${node.port}: ${err.message}`)))
    client.on('close', () => (got ? resolve(got) : reject(new Error(`probing ${node.host}:${node.port}: closed before the handshake`))))
    // The handshake is over before the host key check matters: accept, then hang up.
    client.connect({ host: node.host, port: node.port, username: t.user, privateKey: key, hostVerifier: () => true, readyTimeout: 10_000 })
  })
}
