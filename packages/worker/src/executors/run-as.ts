import { readFile, stat } from 'node:fs/promises'
import { ApiaryError } from '@apiary/shared'

/** The user commands run as (`--run-as`), as /etc/passwd has it. */
export interface RunAs {
  user: string
  uid: number
  /** The user's primary group. */
  gid: number
  home: string
  shell: string
  /** Where a command without a `cwd` starts: the user's home, or `/` when it has none. */
  cwd: string
}

/** Capability numbers of linux/capability.h. */
const CAP_SETGID = 6
const CAP_SETUID = 7

/**
 * The passwd entry of `name` (a user name, or a numeric uid) in the text of /etc/passwd;
 * undefined when there is none. Pure, for tests.
 * @example passwdEntry('nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n', 'nobody')?.uid // 65534
 */
export function passwdEntry(passwd: string, name: string): Omit<RunAs, 'cwd'> | undefined {
  const byUid = /^\d+$/.test(name)
  for (const line of passwd.split('\n')) {
    const f = line.split(':')
    if (f.length < 7 || line.startsWith('#')) continue
    const [user, , uid, gid, , home, shell] = f as [string, string, string, string, string, string, string]
    if (!/^\d+$/.test(uid) || !/^\d+$/.test(gid)) continue
    if (byUid ? uid === name : user === name) return { user, uid: Number(uid), gid: Number(gid), home, shell }
  }
  return undefined
}

/**
 * Whether a process with this `/proc/self/status` may change its uid and gid: it is root, or
 * holds CAP_SETUID and CAP_SETGID in its effective set (a container's worker may).
 */
export function canSwitchUser(euid: number, status: string): boolean {
  if (euid === 0) return true
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1]
  if (hex === undefined) return false
  const caps = BigInt(`0x${hex}`)
  return ((caps >> BigInt(CAP_SETUID)) & 1n) === 1n && ((caps >> BigInt(CAP_SETGID)) & 1n) === 1n
}

/**
 * Looks `--run-as USER` up and checks, before the worker meets the bus, that commands can run
 * as that user and that this protects anything: the user exists, is not the worker's own (whose
 * credentials and journal a command could then read), and the worker may switch to it.
 * @example const runAs = await resolveRunAs('nobody') // { uid: 65534, … }
 */
export async function resolveRunAs(name: string, field = '--run-as', files = { passwd: '/etc/passwd', status: '/proc/self/status' }): Promise<RunAs> {
  const fail = (message: string, cause?: unknown) => new ApiaryError('invalid_input', `${field} ${name}: ${message}`, field, cause === undefined ? undefined : { cause })
  let passwd: string
  try {
    passwd = await readFile(files.passwd, 'utf8')
  } catch (err) {
    throw fail(`cannot read ${files.passwd} to look the user up: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, err)
  }
  const entry = passwdEntry(passwd, name)
  if (!entry) throw fail(`no such user in ${files.passwd}`)
  const euid = process.geteuid?.() ?? -1
  if (entry.uid === euid) throw fail(`that is the user this worker runs as, so its commands could read the worker's credentials and journal: give another user`)
  const status = await readFile(files.status, 'utf8').catch(() => '')
  if (!canSwitchUser(euid, status)) {
    throw fail(`this worker (uid ${euid}) cannot run commands as another user: it must run as root, or hold CAP_SETUID and CAP_SETGID`)
  }
  const homeIsDir = entry.home !== '' && (await stat(entry.home).then((s) => s.isDirectory(), () => false))
  return Object.freeze({ ...entry, cwd: homeIsDir ? entry.home : '/' })
}

/** What a command run as `u` is told of who and where it is. */
export function runAsEnv(u: RunAs): Record<string, string> {
  return { HOME: u.home, USER: u.user, LOGNAME: u.user, SHELL: u.shell }
}
