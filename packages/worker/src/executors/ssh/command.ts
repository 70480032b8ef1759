import { randomBytes } from 'node:crypto'
import type { ExecOperation } from '@apiary/shared'

/**
 * Quotes one word for a POSIX shell: single quotes keep everything literal (newlines, `$`,
 * backslashes, unicode), and a single quote itself becomes `'\''`.
 *
 * @example shQuote("it's") // 'it'\''s'
 */
export function shQuote(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_./:=@%+,-]+$/.test(word)) return word
  return `'${word.replaceAll("'", `'\\''`)}'`
}

/** What the wrapper says on stdout before the command itself runs. */
export type Preamble = { kind: 'pgid'; pgid: number } | { kind: 'notfound' } | { kind: 'nocwd' }

export interface RemoteCommand {
  /** The line sent in the exec request; the server's login shell runs it. */
  line: string
  /** Finds the wrapper's one-line preamble at the start of stdout. */
  marker: string
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * Wraps an operation for the server's (POSIX) login shell. OpenSSH starts each exec session
 * as a session and process group leader, so the shell's `$$` is the group of everything the
 * command starts; the wrapper prints it as a marker line before anything else, which lets a
 * timeout or cancel kill the whole group from another channel. A missing directory or
 * program is reported by a marker too, so it is an error (could not run), not a failure.
 *
 * env is exported in the command line because sshd refuses `env` requests it has not been
 * told to accept (AcceptEnv).
 */
export function remoteCommand(op: ExecOperation, nonce = randomBytes(6).toString('hex')): RemoteCommand {
  const marker = `\x1eapiary-${nonce}`
  const say = (what: string) => `printf '%s ${what}\\n' ${shQuote(marker)}`
  const lines: string[] = []
  if (op.cwd !== undefined) lines.push(`cd -- ${shQuote(op.cwd)} 2>/dev/null || { ${say('nocwd')}; exit 1; }`)
  for (const [name, value] of Object.entries(op.env ?? {})) {
    // The schema admits only these names; a name cannot be quoted, so never trust it blindly.
    if (!ENV_NAME.test(name)) throw new Error(`environment variable name ${JSON.stringify(name)} is not valid`)
    lines.push(`export ${name}=${shQuote(value)}`)
  }
  let run: string
  if (op.shell) {
    // Like the local executor: the string is run by /bin/sh, whatever the login shell is.
    run = `exec /bin/sh -c ${shQuote(op.command ?? '')}`
  } else {
    const argv = op.argv ?? []
    const prog = shQuote(argv[0] ?? '')
    lines.push(`command -v ${prog} >/dev/null 2>&1 || { ${say('notfound')}; exit 127; }`)
    run = `exec ${argv.map(shQuote).join(' ')}`
  }
  lines.push(`printf '%s pgid %s\\n' ${shQuote(marker)} "$$"`, run)
  return { line: lines.join('\n'), marker }
}

/**
 * Strips the wrapper's preamble line from the start of stdout. Whatever a login script printed
 * before it is kept as output. Gives up (and passes everything through) after `limit` bytes.
 */
export class PreambleReader {
  #buf: Buffer = Buffer.alloc(0)
  #done = false
  readonly #marker: Buffer

  constructor(
    marker: string,
    readonly limit = 64 * 1024,
  ) {
    this.#marker = Buffer.from(marker)
  }

  get done(): boolean {
    return this.#done
  }

  /** Feeds stdout; returns the preamble once seen, and the bytes that are output. */
  push(chunk: Buffer): { preamble?: Preamble; output: Buffer } {
    if (this.#done) return { output: chunk }
    this.#buf = Buffer.concat([this.#buf, chunk])
    const at = this.#buf.indexOf(this.#marker)
    const eol = at === -1 ? -1 : this.#buf.indexOf(0x0a, at)
    if (eol !== -1) {
      this.#done = true
      const words = this.#buf.subarray(at + this.#marker.length, eol).toString().trim().split(' ')
      const output = Buffer.concat([this.#buf.subarray(0, at), this.#buf.subarray(eol + 1)])
      this.#buf = Buffer.alloc(0)
      const preamble: Preamble | undefined =
        words[0] === 'pgid' && /^\d+$/.test(words[1] ?? '') ? { kind: 'pgid', pgid: Number(words[1]) }
        : words[0] === 'notfound' ? { kind: 'notfound' }
        : words[0] === 'nocwd' ? { kind: 'nocwd' }
        : undefined
      return preamble ? { preamble, output } : { output }
    }
    if (this.#buf.length > this.limit) return { output: this.flush() }
    return { output: Buffer.alloc(0) }
  }

  /** Gives up waiting for the preamble; returns what was held back. */
  flush(): Buffer {
    this.#done = true
    const out = this.#buf
    this.#buf = Buffer.alloc(0)
    return out
  }
}
