/**
 * The first item heard by `listeners` that `pick` turns into a value (or an Error, which
 * rejects), bounded by `timeoutMs`, the signal and `ended` (the source is gone).
 */
export function nextMatch<M, T>(
  listeners: Set<(m: M) => void>,
  pick: (m: M) => T | Error | undefined,
  o: { signal: AbortSignal; timeoutMs?: number; timeout: () => Error; ended: Promise<unknown>; gone: () => Error },
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const done = (fn: () => void) => {
      clearTimeout(timer)
      listeners.delete(onItem)
      o.signal.removeEventListener('abort', onAbort)
      fn()
    }
    const onItem = (m: M) => {
      const v = pick(m)
      if (v instanceof Error) done(() => reject(v))
      else if (v !== undefined) done(() => resolve(v))
    }
    const onAbort = () => done(() => reject(o.signal.reason as Error))
    const timer = o.timeoutMs === undefined ? undefined : setTimeout(() => done(() => reject(o.timeout())), o.timeoutMs)
    listeners.add(onItem)
    if (o.signal.aborted) return onAbort()
    o.signal.addEventListener('abort', onAbort, { once: true })
    void o.ended.then(() => done(() => reject(o.gone())))
  })
}
