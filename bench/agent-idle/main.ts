/**
 * The footprint of an idle agent worker — the process every node of a fleet runs — beside a
 * bare Node.js process holding one NATS connection, started the same way in the same run:
 * resident memory once idle, and time from spawn to ready (the worker's first heartbeat seen
 * on NATS; the baseline's first message). Goal: at most 1.3× the baseline's RSS, ready in
 * under 250 ms.
 *
 *   pnpm bench:agent-idle [--runs 5]
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { parseArgs } from 'node:util'
import { connect } from '@nats-io/transport-node'
import { generateSigningKey, subjects } from '@apiary/shared'
import { startNats } from '../../test/harness/nats.ts'
import { memStatus } from '../lib/procfs.ts'
import { ROOT } from '../lib/roles.ts'
import { progress, runBench } from '../lib/run.ts'
import { median } from '../lib/stats.ts'

/** Any key will do: an idle worker checks no work. */
const QUEEN_KEY = generateSigningKey().publicKey

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } })
const runs = Number(values.runs)
/** How long a process idles before its memory is read: a few heartbeats, GC settled. */
const IDLE_MS = 2000

const { failed } = await runBench('agent-idle', 300, async ({ teardown, signal, pids }) => {
  const nats = await startNats()
  teardown.add('nats-server', () => nats.stop())
  const watcher = await connect({ servers: nats.url })
  teardown.add('watcher', () => watcher.close())

  /** Spawns a process, resolves when `subject` first carries a message, reads its RSS after idling. */
  async function measure(cmd: string[], subject: string): Promise<{ readyMs: number; rssMb: number }> {
    const seen = new Promise<void>((resolve) => {
      const sub = watcher.subscribe(subject, { max: 1, callback: () => resolve() })
      signal.addEventListener('abort', () => sub.unsubscribe(), { once: true })
    })
    await watcher.flush()
    const t0 = performance.now()
    const child: ChildProcess = spawn(process.execPath, cmd, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, APIARY_LOG_LEVEL: 'warn' } })
    pids.add(child.pid!)
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`${cmd.join(' ')} exited (${code})`))))
    try {
      await Promise.race([seen, exited])
      const readyMs = performance.now() - t0
      await new Promise((r) => setTimeout(r, IDLE_MS))
      return { readyMs, rssMb: (await memStatus(child.pid!))?.rssMb ?? NaN }
    } finally {
      child.kill('SIGTERM')
      await new Promise((r) => (child.exitCode === null ? child.once('exit', r) : r(undefined)))
      pids.delete(child.pid!)
    }
  }

  const bare = `
    import { connect } from '@nats-io/transport-node'
    const nc = await connect({ servers: ${JSON.stringify(nats.url)} })
    nc.publish('bench.bare.ready', '')
    setInterval(() => nc.publish('bench.bare.beat', ''), 1000)
    process.on('SIGTERM', () => nc.close().then(() => process.exit(0)))
  `
  const results = { bare: [] as Array<{ readyMs: number; rssMb: number }>, worker: [] as Array<{ readyMs: number; rssMb: number }> }
  for (let i = 0; i < runs; i++) {
    // The baseline runs from the worker package's folder, so it resolves the same nats.js.
    results.bare.push(await measure(['--input-type=module', '-e', `process.chdir(${JSON.stringify(`${ROOT}packages/worker`)}); ${bare}`], 'bench.bare.ready'))
    const id = `idle-${i}`
    results.worker.push(await measure(['packages/worker/bin/apiary-worker.mjs', '--nats', nats.url, '--insecure-bus', '--queen-key', QUEEN_KEY, '--node-id', id, '--heartbeat', '1s'], subjects.heartbeat('worker', 'default', id)))
    progress(`run ${i + 1}/${runs}: bare ${results.bare.at(-1)!.rssMb.toFixed(1)} MB, worker ${results.worker.at(-1)!.rssMb.toFixed(1)} MB`)
  }
  const b = { rss: median(results.bare.map((r) => r.rssMb)), ready: median(results.bare.map((r) => r.readyMs)) }
  const w = { rss: median(results.worker.map((r) => r.rssMb)), ready: median(results.worker.map((r) => r.readyMs)) }
  console.log(`idle agent worker vs a bare Node.js process with one NATS connection, median of ${runs} runs, RSS after ${IDLE_MS / 1000} s idle`)
  console.log(`                     RSS MB   ready ms`)
  console.log(`bare node + NATS   ${b.rss.toFixed(1).padStart(8)}  ${b.ready.toFixed(0).padStart(9)}`)
  console.log(`apiary-worker      ${w.rss.toFixed(1).padStart(8)}  ${w.ready.toFixed(0).padStart(9)}`)
  console.log(`ratio              ${(w.rss / b.rss).toFixed(2).padStart(8)}× ${(w.ready / b.ready).toFixed(2).padStart(9)}×   (goal: RSS ≤ 1.3×, worker ready < 250 ms)`)
})
process.exitCode = failed ? 1 : 0
