import type { Logger } from './log.ts'

/**
 * For `main.ts` only: closes the program on SIGINT/SIGTERM, once. A second signal while
 * closing exits at once, and so does a close that takes longer than `hardStopMs`. Exit code 0
 * after a clean close.
 */
export function closeOnSignals(log: Logger, close: () => Promise<void>, exit: (code: number) => void, opts: { hardStopMs?: number } = {}): void {
  let closing = false
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) {
      log.warn({ signal }, 'second signal: exiting now')
      exit(1)
      return
    }
    closing = true
    log.info({ signal }, 'shutting down')
    if (opts.hardStopMs !== undefined) {
      setTimeout(() => {
        log.error({ ms: opts.hardStopMs }, 'shutdown did not finish in time: exiting now')
        exit(1)
      }, opts.hardStopMs).unref()
    }
    close().then(
      () => exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed')
        exit(1)
      },
    )
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
}
