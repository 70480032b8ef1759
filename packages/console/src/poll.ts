import { useEffect } from 'preact/hooks'

/**
 * Runs `fn` now and then every `ms` after it settles (never two in flight), paused while the
 * tab is hidden; the signal aborts when the component goes or `deps` change.
 */
export function usePoll(fn: (signal: AbortSignal) => Promise<void>, ms: number, deps: unknown[]): void {
  useEffect(() => {
    const ac = new AbortController()
    let timer: ReturnType<typeof setTimeout> | undefined
    let busy = false
    const tick = async () => {
      timer = undefined
      if (document.hidden || busy) return
      busy = true
      try {
        await fn(ac.signal)
      } finally {
        busy = false
      }
      if (!ac.signal.aborted) timer = setTimeout(() => void tick(), ms)
    }
    const onVisible = () => {
      if (!document.hidden && timer === undefined && !busy) void tick()
    }
    document.addEventListener('visibilitychange', onVisible)
    void tick()
    return () => {
      ac.abort()
      if (timer !== undefined) clearTimeout(timer)
      document.removeEventListener('visibilitychange', onVisible)
    }
  }, deps)
}
