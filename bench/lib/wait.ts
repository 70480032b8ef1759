import type { RoleProc } from './roles.ts'

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

/** Resolves after `ms`, or rejects at once with the signal's reason when it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error)
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(t)
      reject(signal!.reason as Error)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
