import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** Resolves with the first line of the child's stdout or stderr that matches `re`. */
export function waitForLine(child: ChildProcess, re: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = ''
    const onData = (chunk: Buffer) => {
      seen += chunk.toString()
      const lines = seen.split('\n')
      seen = lines.pop() ?? ''
      for (const line of lines) {
        if (re.test(line)) {
          cleanup()
          resolve(line)
          return
        }
      }
    }
    const onExit = (code: number | null) => {
      cleanup()
      reject(new Error(`process exited (${code}) before printing ${re}`))
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`no line matching ${re} within ${timeoutMs} ms`))
    }, timeoutMs)
    const cleanup = () => {
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.stderr?.off('data', onData)
      child.off('exit', onExit)
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', onExit)
  })
}

export interface Proc {
  child: ChildProcess
  /** Everything printed so far. */
  output(): string
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** Starts one of apiary's programs (`packages/<pkg>/bin/<bin>.mjs`) as a real OS process. */
export function startBin(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const pkg = bin === 'keeper' ? 'keeper' : bin.replace(/^apiary-/, '')
  const child = spawn(process.execPath, [`${ROOT}packages/${pkg}/bin/${bin}.mjs`, ...args], {
    env: { ...process.env, APIARY_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  return {
    child,
    output: () => out,
    exited,
    async waitFor(re, timeoutMs = 20_000) {
      const already = out.split('\n').find((l) => re.test(l))
      if (already !== undefined) return already
      return waitForLine(child, re, timeoutMs)
    },
    async stop(graceMs = 5000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs)
      const r = await exited
      clearTimeout(t)
      return r.code
    },
  }
}

/** Runs a program to completion and returns its exit code and output. */
export function runBin(
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const pkg = bin === 'keeper' ? 'keeper' : bin.replace(/^apiary-/, '')
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`${ROOT}packages/${pkg}/bin/${bin}.mjs`, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${bin} ${args.join(' ')} ran longer than ${timeoutMs} ms\n${stdout}\n${stderr}`))
    }, timeoutMs)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}
