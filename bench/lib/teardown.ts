import { errorMessage } from '@apiary/shared'

/** Teardown steps, run last-registered first, each bounded to 30 s, all attempted. */
export class Teardown {
  readonly #steps: Array<{ what: string; fn: () => Promise<unknown> }> = []

  add(what: string, fn: () => Promise<unknown>): void {
    this.#steps.push({ what, fn })
  }

  async run(): Promise<void> {
    for (const { what, fn } of this.#steps.reverse()) {
      let timer: NodeJS.Timeout | undefined
      try {
        await Promise.race([fn(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('took longer than 30 s')), 30_000)))])
      } catch (err) {
        process.stderr.write(`cleanup: ${what}: ${errorMessage(err)}\n`)
      } finally {
        clearTimeout(timer)
      }
    }
    this.#steps.length = 0
  }
}
