import { spawnNats } from './nats.ts'
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
  const s = await spawnNats((port) => ['-c', configFile, '-a', '127.0.0.1', '-p', String(port), '-m', '0'])
  const { child } = s
  return {
    url: `nats://127.0.0.1:${s.port}`,
    port: s.port,
    pid: child.pid!,
    async reload() {
      const done = waitForLine(child, /Reloaded server configuration|Failed to reload|reload.*error/i, 10_000)
      child.kill('SIGHUP')
      const line = await done
      if (!/Reloaded server configuration/.test(line)) throw new Error(`nats-server could not reload ${configFile}: ${line}`)
    },
    output: s.output,
    stop: s.stop,
  }
}
