import { spawn } from 'node:child_process'
import { freePort } from './nats.ts'
import { waitForLine } from './process.ts'

export interface ConfiguredNats {
  url: string
  port: number
  pid: number
  /** SIGHUP, resolved once nats-server says it reloaded its config (rejected if it could not). */
  reload(): Promise<void>
  /** The server's log so far. */
  output(): string
  stop(): Promise<void>
}

/**
 * Spawns `nats-server -c CONFIG` (operator mode, TLS, whatever the file says) on a free
 * loopback port, which overrides the file's listen address, and resolves once it accepts
 * connections. Its log is read all along, so a chatty server never blocks on a full pipe.
 */
export async function startNatsWithConfig(configFile: string): Promise<ConfiguredNats> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    const child = spawn('nats-server', ['-c', configFile, '-a', '127.0.0.1', '-p', String(port), '-m', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let log = ''
    const keep = (c: Buffer) => (log = (log + c.toString()).slice(-256 * 1024))
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    try {
      await waitForLine(child, /Server is ready/, 10_000)
    } catch (err) {
      child.kill('SIGKILL')
      await exited
      // Another process may have taken the port between choosing and binding it.
      if (attempt < 3 && /address already in use/i.test(log)) continue
      throw new Error(`nats-server -c ${configFile} did not start: ${(err as Error).message}\n${log}`)
    }
    return {
      url: `nats://127.0.0.1:${port}`,
      port,
      pid: child.pid!,
      async reload() {
        const done = waitForLine(child, /Reloaded server configuration|Failed to reload|reload.*error/i, 10_000)
        child.kill('SIGHUP')
        const line = await done
        if (!/Reloaded server configuration/.test(line)) throw new Error(`nats-server could not reload ${configFile}: ${line}`)
      },
      output: () => log,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
        await exited
      },
    }
  }
}
