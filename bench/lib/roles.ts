import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { nextMatch } from './next-match.ts'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** Keeps the last `max` characters of a stream, so a chatty process cannot grow the parent. */
class Tail {
  #text = ''
  constructor(private readonly max = 64 * 1024) {}
  push(s: string) {
    this.#text += s
    if (this.#text.length > this.max * 2) this.#text = this.#text.slice(-this.max)
  }
  get text() {
    return this.#text.slice(-this.max)
  }
}

export interface RoleProc {
  name: string
  child: ChildProcess
  pid: number
  /** The last lines it printed (for error reports). */
  tail(): string
  /** Resolves with the first line matching `re`; rejects on exit, timeout or abort. */
  waitForLine(re: RegExp, timeoutMs: number, signal: AbortSignal): Promise<string>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>
}

/**
 * Starts one of apiary's programs (`packages/<pkg>/bin/<bin>.mjs`) as its own OS process, with
 * output piped (and drained: a full pipe would stall its logger). `nodeFlags` go to node itself
 * (e.g. `--cpu-prof`).
 */
export function startRole(name: string, bin: string, args: string[], env: NodeJS.ProcessEnv, nodeFlags: string[] = []): RoleProc {
  const pkg = bin.replace(/^apiary-/, '')
  const child = spawn(process.execPath, [...nodeFlags, `${ROOT}packages/${pkg}/bin/${bin}.mjs`, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const tail = new Tail()
  const lineWaiters = new Set<(line: string) => void>()
  let partial = ''
  const onData = (chunk: Buffer) => {
    const s = chunk.toString()
    tail.push(s)
    if (lineWaiters.size === 0) {
      partial = ''
      return
    }
    const lines = (partial + s).split('\n')
    partial = lines.pop() ?? ''
    for (const l of lines) for (const w of [...lineWaiters]) w(l)
  }
  child.stdout!.on('data', onData)
  child.stderr!.on('data', onData)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, sig) => resolve({ code, signal: sig })),
  )
  if (child.pid === undefined) throw new Error(`${name} did not start`)

  return {
    name,
    child,
    pid: child.pid,
    tail: () => tail.text,
    exited,
    waitForLine(re, timeoutMs, signal) {
      // Lines already printed count too.
      const seen = tail.text.split('\n').find((l) => re.test(l))
      if (seen !== undefined) return Promise.resolve(seen)
      return nextMatch(lineWaiters, (l) => (re.test(l) ? l : undefined), {
        signal,
        timeoutMs,
        timeout: () => new Error(`${name} printed no line matching ${re} within ${timeoutMs} ms\n${tail.text}`),
        ended: exited,
        gone: () => new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before printing ${re}\n${tail.text}`),
      })
    },
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(t)
    },
  }
}
