import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import type { ExecOperation } from '@apiary/shared'
import { OutputCap } from '../output-cap.ts'
import { type ExecHooks, type ExecResult, stoppedResult } from './executor.ts'
import { type RunAs, runAsEnv } from './run-as.ts'

export interface LocalExecOptions {
  op: ExecOperation
  capBytes: number
  /** Aborted with a `StopRequest` (or `'timeout'`; any other reason is a cancel with that cause). */
  signal: AbortSignal
  /** Time between SIGTERM and SIGKILL to the process group. */
  killGraceMs?: number
  /** How long to wait for pipes after the program exited (a background child may hold them). */
  drainMs?: number
  /** Set for every command, under the operation's own env: APIARY_JOB_ID, APIARY_NODE_ID. */
  baseEnv?: Record<string, string>
  /** Run as this user (uid and primary gid; no supplementary groups), with its HOME, USER, LOGNAME and SHELL. */
  runAs?: RunAs
}

/**
 * Runs a command as a child process in its own process group. Timeout and cancel signal the
 * whole group (SIGTERM, then SIGKILL), so nothing the command started survives it.
 */
export function runLocal(opts: LocalExecOptions, hooks: ExecHooks): Promise<ExecResult> {
  const { op } = opts
  const [file, args] = op.shell ? ['/bin/sh', ['-c', op.command ?? '']] : [op.argv![0]!, op.argv!.slice(1)]
  const cap = new OutputCap({ capBytes: opts.capBytes, emit: hooks.onOutput })
  return new Promise<ExecResult>((resolve) => {
    if (opts.signal.aborted) {
      resolve(stoppedResult(opts.signal, { bytes: 0, truncated: false, digest: null }, null, null))
      return
    }
    const child = spawn(file, args, {
      detached: true,
      stdio: [op.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { ...childEnv(), ...(opts.runAs ? runAsEnv(opts.runAs) : {}), ...opts.baseEnv, ...op.env },
      // libuv drops every supplementary group when it switches: the command holds the user's uid and primary group only.
      ...(opts.runAs ? { uid: opts.runAs.uid, gid: opts.runAs.gid } : {}),
      ...(op.cwd ? { cwd: op.cwd } : opts.runAs ? { cwd: opts.runAs.cwd } : {}),
    })
    let started = false
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
    let killTimer: NodeJS.Timeout | undefined
    let drainTimer: NodeJS.Timeout | undefined
    let settled = false

    const killGroup = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return
      try {
        process.kill(-child.pid, sig)
      } catch {
        // The group is already gone.
      }
    }
    const onAbort = () => {
      killGroup('SIGTERM')
      killTimer = setTimeout(() => killGroup('SIGKILL'), opts.killGraceMs ?? 2000)
    }
    const settle = (r: ExecResult) => {
      if (settled) return
      settled = true
      opts.signal.removeEventListener('abort', onAbort)
      clearTimeout(drainTimer)
      clearTimeout(killTimer)
      // Whatever the command left behind in its group goes with it when it was stopped.
      if (opts.signal.aborted) killGroup('SIGKILL')
      resolve(r)
    }

    child.stdout!.on('data', (b: Buffer) => cap.push('stdout', b))
    child.stderr!.on('data', (b: Buffer) => cap.push('stderr', b))
    child.stdin?.on('error', () => undefined)
    if (op.stdin !== undefined) child.stdin?.end(op.stdin)

    child.once('spawn', () => {
      started = true
      hooks.onStart()
    })
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (started) return
      const total = cap.finish()
      settle({
        state: 'error',
        exitCode: null,
        signal: null,
        // spawn says ENOENT for a missing cwd too: tell the two apart.
        cause: err.code === 'ENOENT' && op.cwd && !existsSync(op.cwd) ? `cannot change to directory ${op.cwd}` : err.code === 'ENOENT' ? `program not found: ${file}` : err.code === 'EACCES' ? `permission denied: ${file}` : `cannot start ${file}: ${err.message}`,
        bytes: total.bytes,
        truncated: total.truncated,
        digest: null,
      })
    })
    child.once('exit', (code, signal) => {
      exit = { code, signal }
      // Pipes normally close right after; a daemonised grandchild may keep them open.
      drainTimer = setTimeout(() => {
        child.stdout?.destroy()
        child.stderr?.destroy()
        done()
      }, opts.drainMs ?? 2000)
    })
    child.once('close', () => done())
    opts.signal.addEventListener('abort', onAbort, { once: true })

    function done() {
      if (!exit || settled) return
      const total = cap.finish()
      const out = { bytes: total.bytes, truncated: total.truncated, digest: total.digest }
      if (opts.signal.aborted) {
        settle(stoppedResult(opts.signal, out, exit.code, exit.signal))
        return
      }
      settle({
        state: exit.code === 0 ? 'ok' : 'failed',
        exitCode: exit.code,
        signal: exit.signal,
        cause: exit.signal ? `killed by ${exit.signal}` : null,
        ...out,
      })
    }
  })
}

/**
 * What a command inherits of the worker's environment: only what any program expects (where
 * to find programs, who and where it is, the locale, the proxy). Nothing else passes, so the
 * worker's own settings and whatever secrets its environment holds (an ssh-agent socket, cloud
 * or NATS credentials) never reach a command; the job's `env` adds what it needs.
 */
const INHERITED = new Set(['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TZ', 'TERM', 'TMPDIR', 'http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'])

function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (INHERITED.has(k) || k.startsWith('LC_')) env[k] = v
  return env
}
