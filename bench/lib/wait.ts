import type { RoleProc } from '../fanout/roles.ts'
import { sleep } from '../fanout/pool.ts'

/** Awaits `p`, failing if `proc` exits first, `timeoutMs` passes or `signal` aborts. */
export async function raceExit(p: Promise<void>, proc: RoleProc, timeoutMs: number, signal: AbortSignal, what: string): Promise<void> {
  const limit = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
  await Promise.race([
    p,
    proc.exited.then(({ code, signal: sig }) => {
      throw new Error(`${proc.name} exited (${code ?? sig}) while waiting for ${what}\n${proc.tail()}`)
    }),
    new Promise<never>((_, reject) => {
      const onAbort = () => reject(signal.aborted ? (signal.reason as Error) : new Error(`no ${what} within ${timeoutMs} ms\n${proc.tail()}`))
      if (limit.aborted) onAbort()
      limit.addEventListener('abort', onAbort, { once: true })
      void p.finally(() => limit.removeEventListener('abort', onAbort))
    }),
  ])
}

/** Polls `check` until it holds: bounded by `timeoutMs` and the signal. */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, everyMs: number, signal: AbortSignal, what: () => string): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`)
    await sleep(everyMs, signal)
  }
}
