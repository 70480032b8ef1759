import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { ApiaryError, type ErrorCode, isApiaryError } from '@apiary/shared'
import { defaultStateDir, readSecretFile } from '@apiary/shared/runtime'
import type { JobClient } from '@apiary/shared/client'
import { escapeControls } from '../render/escape.ts'
import { LineWriter } from '../render/output.ts'

/** Exit codes keeper promises (README, "Exit codes"). */
export const EXIT = { ok: 0, notOk: 1, usage: 2, cancelled: 3, unreachable: 4, detached: 130 } as const

export type Format = 'text' | 'json' | 'ndjson'

export interface Io {
  out: LineWriter
  err: LineWriter
  env: NodeJS.ProcessEnv
  /** Aborted on Ctrl-C. */
  interrupt: AbortSignal
  /** stdout is a terminal: a live progress line instead of one line per node. */
  tty: boolean
  /** Colours (a terminal, NO_COLOR unset). */
  color: boolean
  format: Format
  /** Asks a question on the terminal; undefined when there is none (stdin or stdout not a TTY). */
  ask?: (question: string) => Promise<string>
}

/** The global flags a command runs with (for keeper dev's one command: its cluster's). */
export interface GlobalValues {
  /** One queen's URL, or several, comma-separated: a leader and its standbys. */
  queen: string
  'token-file': string | undefined
  'state-dir': string | undefined
  /** CA certificates (PEM file) an https:// queen's certificate must chain to; else the system's. */
  ca: string | undefined
  /** Plain http:// to a queen on another machine is allowed. */
  insecure: boolean
}

export function stateDirOf(g: GlobalValues, env: NodeJS.ProcessEnv): string {
  return g['state-dir'] ?? defaultStateDir(env)
}

export function cursorDirOf(g: GlobalValues, env: NodeJS.ProcessEnv): string {
  return join(stateDirOf(g, env), 'cursors')
}

export function tokenFileOf(g: GlobalValues, env: NodeJS.ProcessEnv): string {
  return g['token-file'] ?? join(stateDirOf(g, env), 'token')
}

/** A client for the queens named by the flags (`--queen URL[,URL…]`), with the token from its 0600 file. */
export async function connectClient(g: GlobalValues, env: NodeJS.ProcessEnv): Promise<JobClient> {
  // Loaded here, not at start: the HTTP client (undici) is a fifth of keeper's start-up, and
  // keeper bus, run once per node when enrolling a fleet, never talks to the queen.
  const { createJobClient, parseQueenUrls } = await import('@apiary/shared/client')
  const queens = parseQueenUrls(g.queen, '--queen', { insecure: g.insecure })
  const ca = g.ca === undefined ? undefined : await readCaFile(g.ca)
  const file = tokenFileOf(g, env)
  let token: string
  try {
    token = await readSecretFile(file, 'token')
  } catch (err) {
    if (isApiaryError(err, 'not_found')) {
      throw new ApiaryError(
        'unreachable',
        `no API token at ${file}: start a queen (apiary-queen or keeper dev) first, or pass --token-file`,
        'token-file',
        { cause: err },
      )
    }
    throw err
  }
  return createJobClient({ url: queens, token, insecure: g.insecure, ...(ca === undefined ? {} : { ca }) })
}

/** A CA bundle is a few certificates; a file past this is not one. */
const CA_FILE_MAX_BYTES = 1024 * 1024

/** The PEM certificates of `--ca`; an error names the flag and never quotes the file. */
async function readCaFile(path: string): Promise<string> {
  const fail = (message: string, cause?: unknown) => new ApiaryError('invalid_input', `--ca file ${path} ${message}`, '--ca', cause === undefined ? undefined : { cause })
  let text: string
  try {
    const st = await stat(path)
    if (!st.isFile() || st.size > CA_FILE_MAX_BYTES) throw fail(`is not a certificate file (a regular file of at most ${CA_FILE_MAX_BYTES} bytes)`)
    text = await readFile(path, 'utf8')
  } catch (err) {
    if (isApiaryError(err)) throw err
    const code = (err as NodeJS.ErrnoException).code
    throw fail(code === 'ENOENT' ? 'does not exist' : `cannot be read: ${code ?? 'error'}`, err)
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) throw fail('holds no PEM certificate (-----BEGIN CERTIFICATE-----)')
  return text
}

/** Errors that are the caller's to fix: exit 2. */
const USAGE_ERRORS: readonly ErrorCode[] = ['invalid_input', 'not_found', 'conflict', 'unauthorized', 'forbidden', 'confirmation_required']

/** Maps an error to keeper's exit code and prints it (as JSON too, when the output is JSON). */
export async function reportError(io: Io, err: unknown): Promise<number> {
  const message = err instanceof Error ? err.message : String(err)
  // A message may carry the queen's words (an HTTP error body): nothing in it acts on a terminal.
  await io.err.line(`keeper: ${escapeControls(message, { keepNewlines: true })}`)
  if (io.format !== 'text') {
    const e = isApiaryError(err) ? err : undefined
    await io.out.line(JSON.stringify({ error: { code: e?.code ?? 'internal', message, ...(e?.field ? { field: e.field } : {}) } }))
  }
  if (USAGE_ERRORS.some((c) => isApiaryError(err, c))) return EXIT.usage
  if (isApiaryError(err, 'unreachable') || isApiaryError(err, 'unavailable')) return EXIT.unreachable
  return EXIT.notOk
}
