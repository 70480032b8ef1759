import { chmod, mkdir, open, readFile, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { ApiaryError } from '../errors.ts'

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

/**
 * Reads a secret from a file that only its owner may read (mode 0600 or stricter). The
 * contents are never put in an error message.
 */
export async function readSecretFile(path: string, what: string): Promise<string> {
  let st
  try {
    st = await stat(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new ApiaryError(
      code === 'ENOENT' ? 'not_found' : 'invalid_input',
      code === 'ENOENT' ? `${what} file ${path} does not exist` : `cannot read ${what} file ${path}: ${code ?? 'error'}`,
      what,
      { cause: err },
    )
  }
  if ((st.mode & 0o077) !== 0) {
    throw new ApiaryError(
      'invalid_input',
      `${what} file ${path} is readable by others (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${path}`,
      what,
    )
  }
  const text = (await readFile(path, 'utf8')).trim()
  if (text === '') throw new ApiaryError('invalid_input', `${what} file ${path} is empty`, what)
  return text
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
