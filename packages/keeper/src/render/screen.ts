import type { LineWriter } from './output.ts'

/**
 * Lines that scroll, plus (on a terminal) one status line kept at the bottom and redrawn in
 * place, at most every `everyMs`. On a pipe the status line is never drawn.
 */
export class Screen {
  #status = ''
  #shown = false
  #last = 0

  constructor(
    private readonly out: LineWriter,
    private readonly tty: boolean,
    private readonly everyMs = 100,
  ) {}

  async line(text: string): Promise<void> {
    if (this.#shown) await this.out.raw('\r\x1b[2K')
    this.#shown = false
    await this.out.line(text)
    if (this.tty && this.#status) await this.#draw()
  }

  /** Sets the status line; drawn now if `force` or if the last draw is old enough. */
  async status(text: string, force = false): Promise<void> {
    this.#status = text
    if (!this.tty) return
    const now = Date.now()
    if (!force && now - this.#last < this.everyMs) return
    await this.#draw()
  }

  async #draw(): Promise<void> {
    this.#last = Date.now()
    await this.out.raw(`\r\x1b[2K${this.#status}`)
    this.#shown = true
  }

  /** Removes the status line for good. */
  async clear(): Promise<void> {
    if (this.#shown) await this.out.raw('\r\x1b[2K')
    this.#shown = false
    this.#status = ''
  }
}

const CODES: Record<string, string> = { ok: '32', failed: '31', error: '31', timeout: '33', lost: '35', cancelled: '33', skipped: '2' }

/** Colours a state name on a terminal, unless NO_COLOR is set. */
export function paint(color: boolean, state: string, text = state): string {
  const code = CODES[state]
  return color && code ? `\x1b[${code}m${text}\x1b[0m` : text
}
