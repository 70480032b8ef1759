import { createHash, type Hash } from 'node:crypto'
import { TextDecoder } from 'node:util'
import { outputDigest } from '@apiary/shared'

export type StreamName = 'stdout' | 'stderr'

export interface OutputChunk {
  stream: StreamName
  data: string
}

export interface OutputCapOptions {
  capBytes: number
  /** Called with each coalesced chunk, in order per stream. */
  emit: (chunk: OutputChunk) => void
  /** Largest chunk handed to `emit`. */
  chunkBytes?: number
  /** How long a partial line may wait for its newline. */
  flushMs?: number
}

/**
 * Collects a task's output under a per-node byte cap. Bytes past the cap are counted but not
 * kept; nothing is ever concatenated into one growing string. Output is decoded as UTF-8 per
 * stream (a character split across reads survives) and handed on in line-aligned chunks.
 * The digest covers the kept bytes of each stream separately, so two nodes printing the same
 * stdout and stderr match whatever their interleaving.
 */
export class OutputCap {
  #kept = 0
  #seen = 0
  #truncated = false
  readonly #hash: Record<StreamName, Hash> = { stdout: createHash('sha256'), stderr: createHash('sha256') }
  readonly #decoder: Record<StreamName, TextDecoder> = { stdout: new TextDecoder(), stderr: new TextDecoder() }
  readonly #pending: Record<StreamName, string> = { stdout: '', stderr: '' }
  #timer: NodeJS.Timeout | undefined
  readonly #o: Required<OutputCapOptions>

  constructor(opts: OutputCapOptions) {
    this.#o = { chunkBytes: 32 * 1024, flushMs: 50, ...opts }
  }

  push(stream: StreamName, buf: Uint8Array): void {
    this.#seen += buf.length
    const room = this.#o.capBytes - this.#kept
    if (room <= 0) {
      this.#truncated = true
      return
    }
    const take = buf.length > room ? buf.subarray(0, room) : buf
    if (take.length < buf.length) this.#truncated = true
    this.#kept += take.length
    this.#hash[stream].update(take)
    this.#pending[stream] += this.#decoder[stream].decode(take, { stream: true })
    this.#drain(stream, false)
    if (this.#timer === undefined && (this.#pending.stdout !== '' || this.#pending.stderr !== '')) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined
        this.flush()
      }, this.#o.flushMs)
    }
  }

  /** Emits complete lines (or full chunks); with `all`, the partial tail too. */
  #drain(stream: StreamName, all: boolean): void {
    let text = this.#pending[stream]
    while (text.length >= this.#o.chunkBytes) {
      this.#o.emit({ stream, data: text.slice(0, this.#o.chunkBytes) })
      text = text.slice(this.#o.chunkBytes)
    }
    const cut = all ? text.length : text.lastIndexOf('\n') + 1
    if (cut > 0) {
      this.#o.emit({ stream, data: text.slice(0, cut) })
      text = text.slice(cut)
    }
    this.#pending[stream] = text
  }

  flush(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#drain('stdout', true)
    this.#drain('stderr', true)
  }

  /** Flushes what is left and returns the totals. Call once, when the process is done. */
  finish(): { bytes: number; kept: number; truncated: boolean; digest: string } {
    for (const s of ['stdout', 'stderr'] as const) this.#pending[s] += this.#decoder[s].decode()
    this.flush()
    const digest = outputDigest(this.#hash.stdout.digest(), this.#hash.stderr.digest())
    return { bytes: this.#seen, kept: this.#kept, truncated: this.#truncated, digest }
  }
}
