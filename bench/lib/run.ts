import { errorMessage } from '@apiary/shared'
import { Teardown } from './teardown.ts'

/** When the benchmark process started (performance.now() time). */
export const started = performance.now()

/** A progress line on stderr with the time since the benchmark started; stdout keeps the figures. */
export function progress(msg: string): void {
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`)
}

export interface BenchContext {
  /** Aborted by the time limit or the first SIGINT/SIGTERM. */
  signal: AbortSignal
  teardown: Teardown
  /** Processes a second signal kills at once, without waiting for the teardown. */
  pids: Set<number>
}

/**
 * The life of one benchmark run: a time limit, signals (the first aborts and tears down, a
 * second kills what is left and exits), and a teardown that always runs. Failure is printed.
 */
export async function runBench<R>(name: string, timeLimitS: number, body: (ctx: BenchContext) => Promise<R>): Promise<{ result: R | undefined; failed: boolean }> {
  const ctl = new AbortController()
  const limit = setTimeout(() => ctl.abort(new Error(`time limit of ${timeLimitS} s reached`)), timeLimitS * 1000)
  const pids = new Set<number>()
  let signals = 0
  const onSignal = (sig: NodeJS.Signals) => {
    if (++signals > 1) {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          // already gone
        }
      }
      process.exit(130)
    }
    ctl.abort(new Error(`interrupted by ${sig}`))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const teardown = new Teardown()
  try {
    return { result: await body({ signal: ctl.signal, teardown, pids }), failed: false }
  } catch (err) {
    process.stderr.write(`${name} failed: ${errorMessage(err)}\n`)
    return { result: undefined, failed: true }
  } finally {
    clearTimeout(limit)
    progress('shutting down')
    await teardown.run()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
