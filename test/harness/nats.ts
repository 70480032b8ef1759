import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitForLine } from './process.ts'

/** A free TCP port on 127.0.0.1, chosen by the kernel. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

export interface NatsServer {
  url: string
  port: number
  /** Where JetStream keeps its files, when it runs. */
  storeDir?: string
  stop(): Promise<void>
}

/** A `nats-server` process that said it is ready. */
export interface SpawnedNats {
  port: number
  child: ChildProcess
  /** The server's log so far (the last 256 KiB). */
  output(): string
  /** SIGTERM, resolved once it exited. */
  stop(): Promise<void>
  /** SIGKILL: nothing flushed, nothing said to its peers. Resolved once it exited. */
  kill(): Promise<void>
}

const LOG_KEPT = 256 * 1024

/**
 * Spawns `nats-server` with the arguments `argsFor(port)` gives for a free loopback port and
 * resolves once it accepts connections. Its log is read all along, so a chatty server never
 * blocks on a full pipe. When another process took the port between choosing and binding it,
 * it tries another; any other failure is thrown with the server's log.
 *
 * @example const s = await spawnNats((port) => ['-a', '127.0.0.1', '-p', String(port)])
 */
export async function spawnNats(argsFor: (port: number) => string[] | Promise<string[]>): Promise<SpawnedNats> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    const args = await argsFor(port)
    const child = spawn('nats-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let log = ''
    const keep = (c: Buffer) => (log = (log + c.toString()).slice(-LOG_KEPT))
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    try {
      await waitForLine(child, /Server is ready/, 10_000)
    } catch (err) {
      child.kill('SIGKILL')
      await exited
      if (attempt < 3 && /address already in use/i.test(log)) continue
      throw new Error(`nats-server ${args.join(' ')} did not start: ${(err as Error).message}\n${log}`, { cause: err })
    }
    return {
      port,
      child,
      output: () => log,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
        await exited
      },
      async kill() {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
        await exited
      },
    }
  }
}

/**
 * Spawns a real `nats-server` with JetStream (its store in a fresh temporary directory) on a
 * free loopback port and resolves once it accepts connections. `stop()` kills it, waits for
 * the exit and removes the store.
 */
export async function startNats(): Promise<NatsServer> {
  const store = await mkdtemp(join(tmpdir(), 'apiary-js-'))
  const s = await spawnNats((port) => ['-a', '127.0.0.1', '-p', String(port), '-m', '0', '-js', '-sd', store]).catch(async (err: unknown) => {
    await rm(store, { recursive: true, force: true })
    throw err
  })
  return {
    url: `nats://127.0.0.1:${s.port}`,
    port: s.port,
    storeDir: store,
    async stop() {
      await s.stop()
      await rm(store, { recursive: true, force: true })
    },
  }
}
