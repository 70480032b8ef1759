import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
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
  stop(): Promise<void>
}

/**
 * Spawns a real `nats-server` on a free loopback port and resolves once it accepts
 * connections. `stop()` kills it and waits for the exit.
 */
export async function startNats(): Promise<NatsServer> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-m', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    try {
      await waitForLine(child, /Server is ready/, 10_000)
    } catch (err) {
      child.kill('SIGKILL')
      await exited
      // Another process may have taken the port between choosing and binding it.
      if (attempt < 3) continue
      throw err
    }
    return {
      url: `nats://127.0.0.1:${port}`,
      port,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
        await exited
      },
    }
  }
}
