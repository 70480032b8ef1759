import { constants } from 'node:fs'
import { chmod, type FileHandle, mkdir, open, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { ApiaryError, errorMessage } from '../errors.ts'

/** How every duration flag reads, for help texts and errors. */
export const DURATION_RULE = '500ms, 5s, 2m, 1h; a bare number is seconds'

/**
 * Reads a duration: `500ms`, `30s`, `5m`, `1h`, `1m30s`, or a bare number of seconds. Every
 * duration flag and field reads this way, so `--heartbeat 5` and `--timeout 5` are both 5 s.
 * @example parseDuration('1m30s') // 90000
 */
export function parseDuration(text: string, field: string): number {
  const t = text.trim()
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000)
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy
  let total = 0
  let m: RegExpExecArray | null
  let consumed = 0
  while ((m = re.exec(t)) !== null) {
    const n = Number(m[1])
    const unit = m[2]!
    total += n * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit]!
    consumed = re.lastIndex
  }
  if (t === '' || consumed !== t.length) {
    throw new ApiaryError('invalid_input', `${field}: "${text}" is not a duration (e.g. ${DURATION_RULE})`, field)
  }
  return Math.round(total)
}

/** `$XDG_STATE_HOME/apiary`, or `~/.local/state/apiary`. */
export function defaultStateDir(env: NodeJS.ProcessEnv): string {
  const xdg = env.XDG_STATE_HOME
  return join(xdg && xdg.startsWith('/') ? xdg : join(env.HOME ?? homedir(), '.local', 'state'), 'apiary')
}

/** The largest secret file read: keys, tokens and credentials are a few KiB. */
export const SECRET_FILE_MAX_BYTES = 64 * 1024

/**
 * Reads a secret file's bytes: a regular file (not a symbolic link, which is refused rather than
 * followed), owned by this process's user, that nobody else may read (mode 0600 or stricter), at
 * most `SECRET_FILE_MAX_BYTES`. The checks are made on the open file, so the file checked is the
 * file read (no swap between a stat and an open). The contents are never put in an error.
 */
export function readSecretBytes(path: string, what: string): Promise<Buffer> {
  return readOwnFile(path, what, { maxBytes: SECRET_FILE_MAX_BYTES, othersMayRead: false })
}

/**
 * Reads a file this process's user owns, with the checks of `readSecretBytes` made on the open
 * file (no symbolic link followed, a regular file, its owner) and `o`'s: at most `maxBytes`, and
 * when `othersMayRead`, readable (not writable) by others — a file that grants power (the users
 * file) need not be secret, but nobody else may change it.
 */
export async function readOwnFile(path: string, what: string, o: { maxBytes: number; othersMayRead: boolean }): Promise<Buffer> {
  const kind = o.othersMayRead ? '' : ' for a secret'
  let fh: FileHandle
  try {
    // O_NONBLOCK: a FIFO put in a secret's place must not hang the open; it is refused below.
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const message =
      code === 'ENOENT'
        ? `${what} file ${path} does not exist`
        : code === 'ELOOP'
          ? `${what} file ${path} is a symbolic link, which is not followed${kind}: give the file itself`
          : `cannot read ${what} file ${path}: ${code ?? 'error'}`
    throw new ApiaryError(code === 'ENOENT' ? 'not_found' : 'invalid_input', message, what, { cause: err })
  }
  try {
    const st = await fh.stat()
    const refuse = (message: string) => new ApiaryError('invalid_input', `${what} file ${path} ${message}`, what)
    if (!st.isFile()) throw refuse('is not a regular file')
    const me = process.geteuid?.()
    if (me !== undefined && st.uid !== me) throw refuse(`is owned by uid ${st.uid}, not by this user (uid ${me}); run: chown ${me} ${path}, or run as its owner`)
    if (o.othersMayRead ? (st.mode & 0o022) !== 0 : (st.mode & 0o077) !== 0) {
      throw refuse(`is ${o.othersMayRead ? 'writable' : 'readable'} by others (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${path}`)
    }
    if (st.size > o.maxBytes) throw refuse(`is ${st.size} bytes, more than ${o.othersMayRead ? 'it may hold' : 'a secret holds'} (at most ${o.maxBytes})`)
    const bytes = await fh.readFile()
    if (bytes.length > o.maxBytes) throw refuse(`grew past ${o.maxBytes} bytes while it was read`)
    return bytes
  } finally {
    await fh.close()
  }
}

/**
 * Reads a secret (a token, a key, a credential) from a file, trimmed, with the checks of
 * `readSecretBytes`. The contents are never put in an error message.
 * @example const token = await readSecretFile('/var/lib/apiary/token', 'token')
 */
export async function readSecretFile(path: string, what: string): Promise<string> {
  const text = (await readSecretBytes(path, what)).toString('utf8').trim()
  if (text === '') throw new ApiaryError('invalid_input', `${what} file ${path} is empty`, what)
  return text
}

/**
 * Makes a daemon's state directory (mode 0700) if it is missing, and refuses one that others
 * may enter or that another user owns: it holds the job database, tokens, keys and journals,
 * whose own 0600 is no help against a directory another user may rename them in. Follows a
 * symbolic link (a state directory on another disk); what it points to is checked.
 * @example await ensureStateDir('/var/lib/apiary', '--state-dir')
 */
export async function ensureStateDir(dir: string, field = 'stateDir'): Promise<void> {
  const fail = (message: string, err?: unknown) => new ApiaryError('invalid_input', message, field, err === undefined ? undefined : { cause: err })
  let st
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    st = await stat(dir)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST' || code === 'ENOTDIR') throw fail(`state directory ${dir} is not a directory`, err)
    throw fail(`cannot make the state directory ${dir}: ${code ?? errorMessage(err)}`, err)
  }
  if (!st.isDirectory()) throw fail(`state directory ${dir} is not a directory`)
  const me = process.geteuid?.()
  if (me !== undefined && st.uid !== me) throw fail(`state directory ${dir} is owned by uid ${st.uid}, not by this user (uid ${me}): run as its owner, or run: chown ${me} ${dir}`)
  if ((st.mode & 0o077) !== 0) throw fail(`state directory ${dir} is mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}, run: chmod 700 ${dir}`)
}

/** Writes a new secret file with mode 0600, failing if it already exists. */
export async function writeSecretFile(path: string, secret: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const fh = await open(path, 'wx', 0o600)
  try {
    await fh.writeFile(`${secret}\n`)
  } finally {
    await fh.close()
  }
  await chmod(path, 0o600)
}
