import { createHash, randomBytes } from 'node:crypto'
import { chmod, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises'
import { hostname } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { stringify } from 'yaml'
import {
  ApiaryError,
  BUILTIN_ROLES,
  errorMessage,
  isApiaryError,
  issuePath,
  MAX_ROLES,
  MAX_USERS,
  type RoleSpec,
  UsersFile,
  type UserSpec,
} from '@apiary/shared'
import { readSource, sourcePosition } from '@apiary/shared/inventory'
import { readOwnFile } from '@apiary/shared/runtime'

/** The largest users file read. */
export const MAX_USERS_FILE_BYTES = 8 * 1024 * 1024

/** A new API token: 32 random bytes, base64url. Shown once; only its hash is kept. */
export function newToken(): string {
  return randomBytes(32).toString('base64url')
}

/** How a token is stored: `sha256:<hex>`. Tokens are random, so a plain digest is enough (no salt, no stretching). */
export function hashToken(token: string): string {
  return `sha256:${createHash('sha256').update(token).digest('hex')}`
}

const fileError = (message: string, cause?: unknown) => new ApiaryError('invalid_input', message, 'users-file', cause === undefined ? undefined : { cause })

/**
 * Parses a users file (YAML, or JSON for `.json`): its roles and users, each user's roles
 * known (built in or defined in the file), no built-in role redefined, no token hash used
 * twice. A fault is an `invalid_input` error naming the file, line and column, and the field:
 * `users.yaml:7:5: users.bob.roles.1: unknown role "deployer" (roles: viewer, operator, admin, web)`.
 */
export function parseUsersFile(text: string, file: string): UsersFile {
  let source
  try {
    source = readSource(text.startsWith('\uFEFF') ? text.slice(1) : text, file)
  } catch (err) {
    throw fileError(errorMessage(err), err)
  }
  const at = (path: readonly (string | number)[]) => `${file}${sourcePosition(text, source.locate(path))}`
  const fail = (path: readonly (string | number)[], message: string): never => {
    throw new ApiaryError('invalid_input', `${at(path)}: ${path.length > 0 ? `${issuePath(path)}: ` : ''}${message}`, path.length > 0 ? issuePath(path) : 'users-file')
  }
  const parsed = UsersFile.safeParse(source.data ?? {})
  if (!parsed.success) {
    const first = parsed.error.issues[0]!
    fail(first.path as Array<string | number>, first.message)
  }
  const f = parsed.data!
  const roleNames = Object.keys(f.roles)
  if (roleNames.length > MAX_ROLES) fail(['roles'], `holds ${roleNames.length} roles; at most ${MAX_ROLES}`)
  const users = Object.entries(f.users)
  if (users.length > MAX_USERS) fail(['users'], `holds ${users.length} users; at most ${MAX_USERS}`)
  for (const name of roleNames) {
    if (Object.hasOwn(BUILTIN_ROLES, name)) fail(['roles', name], `"${name}" is a built-in role and cannot be redefined: give the role another name`)
  }
  const known = [...Object.keys(BUILTIN_ROLES), ...roleNames]
  const byHash = new Map<string, string>()
  for (const [name, user] of users) {
    user.roles.forEach((role, i) => {
      if (!known.includes(role)) fail(['users', name, 'roles', i], `unknown role "${role}" (roles: ${known.join(', ')})`)
    })
    const other = byHash.get(user.token)
    if (other !== undefined) fail(['users', name, 'token'], `the same token as user ${other}: every user needs a token of their own`)
    byHash.set(user.token, name)
  }
  return f
}

/** Reads and parses a users file; a missing, unreadable, oversized or writable-by-others file is refused naming it. */
export async function loadUsersFile(path: string): Promise<UsersFile> {
  // Whoever may write it may make themselves admin: the queen's user's own file, no symbolic
  // link, nobody else may write it; checked on the open file, which is the file read.
  const bytes = await readOwnFile(path, 'users', { maxBytes: MAX_USERS_FILE_BYTES, othersMayRead: true }).catch((err: unknown) => {
    if (isApiaryError(err, 'not_found')) throw new ApiaryError('not_found', `users file ${path} does not exist`, 'users-file', { cause: err })
    throw fileError(errorMessage(err), err)
  })
  return parseUsersFile(bytes.toString('utf8'), path)
}

/** The file as YAML, roles then users, each sorted by name; only fields that differ from a role's defaults are written. */
export function formatUsersFile(f: UsersFile): string {
  const roles = Object.fromEntries(
    Object.entries(f.roles)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, r]) => [name, compactRole(r)]),
  )
  const users = Object.fromEntries(Object.entries(f.users).sort(([a], [b]) => a.localeCompare(b)))
  const header = '# apiary users: tokens are stored as sha256 hashes only. Managed by keeper users and apiary-queen users; see docs/access.md.\n'
  return header + stringify({ roles, users }, { lineWidth: 0 })
}

function compactRole(r: RoleSpec): Partial<RoleSpec> {
  return {
    operations: r.operations,
    ...(r.targets !== 'all' ? { targets: r.targets } : {}),
    ...(r.destructive ? { destructive: true } : {}),
    ...(r.cancelOthers ? { cancelOthers: true } : {}),
    ...(r.admin ? { admin: true } : {}),
  }
}

/**
 * Replaces the users file atomically: a temporary file (0600) beside it, synced, then renamed
 * over it, so a reader (another queen, the watcher) sees the old file or the new one, never half.
 * `exclusive`: fail with `conflict` if the file already exists (a first start racing another).
 */
/** How long a change waits for another's lock, and after how long unchanged a lock counts as left by a dead writer. */
const LOCK_WAIT_MS = 15_000
const LOCK_STALE_MS = 30_000

/**
 * Runs `fn` (read, change, write back) holding `<file>.lock`, made with O_EXCL: queens sharing
 * one users file (on one host or on a shared volume) and `apiary-queen users` offline change it
 * one at a time, so none writes back a file read before another's change and loses it. A lock
 * unchanged for `LOCK_STALE_MS` was left by a writer that died; it is broken only while it still
 * holds what was read as stale.
 */
export async function withUsersLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${path}.lock`
  const mine = `${hostname()} ${process.pid} ${randomBytes(8).toString('hex')}`
  const end = Date.now() + LOCK_WAIT_MS
  for (let wait = 5; ; wait = Math.min(wait * 2, 200)) {
    try {
      const fh = await open(lock, 'wx', 0o600)
      try {
        await fh.writeFile(mine)
      } finally {
        await fh.close()
      }
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw fileError(`cannot lock users file ${path} (${lock}): ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`, err)
      const st = await stat(lock).catch(() => undefined)
      if (st && Date.now() - st.mtimeMs > LOCK_STALE_MS) {
        const held = await readFile(lock, 'utf8').catch(() => undefined)
        if (held !== undefined && (await readFile(lock, 'utf8').catch(() => undefined)) === held) await rm(lock, { force: true })
        continue
      }
      if (Date.now() > end) throw new ApiaryError('conflict', `users file ${path} is being changed by another writer (${lock}); try again`, 'users-file')
      await new Promise((r) => setTimeout(r, wait))
    }
  }
  try {
    return await fn()
  } finally {
    if ((await readFile(lock, 'utf8').catch(() => undefined)) === mine) await rm(lock, { force: true })
  }
}

export async function writeUsersFile(path: string, f: UsersFile, opts: { exclusive?: boolean } = {}): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const text = formatUsersFile(f)
  if (opts.exclusive) {
    const fh = await open(path, 'wx', 0o600).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ApiaryError('conflict', `users file ${path} already exists`, 'users-file', { cause: err })
      throw err
    })
    try {
      await fh.writeFile(text)
      await fh.sync()
    } finally {
      await fh.close()
    }
    return
  }
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  try {
    const fh = await open(tmp, 'wx', 0o600)
    try {
      await fh.writeFile(text)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await chmod(tmp, 0o600)
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

// ---- changes: pure, on a parsed file -----------------------------------------------------

const notFound = (name: string) => new ApiaryError('not_found', `no user ${name}`, 'name')

function checkRoles(f: UsersFile, roles: readonly string[]): void {
  const known = [...Object.keys(BUILTIN_ROLES), ...Object.keys(f.roles)]
  for (const r of roles) if (!known.includes(r)) throw new ApiaryError('invalid_input', `roles: unknown role "${r}" (roles: ${known.join(', ')})`, 'roles')
}

function isAdmin(f: UsersFile, user: UserSpec): boolean {
  return user.roles.some((r) => (r in BUILTIN_ROLES ? BUILTIN_ROLES[r as keyof typeof BUILTIN_ROLES].admin : f.roles[r]?.admin === true))
}

/** A new user with a new token; the file with them, and the token (to show once). */
export function addUser(f: UsersFile, name: string, roles: readonly string[]): { file: UsersFile; token: string } {
  if (Object.hasOwn(f.users, name)) throw new ApiaryError('conflict', `user ${name} already exists (rotate its token with users rotate)`, 'name')
  if (Object.keys(f.users).length >= MAX_USERS) throw new ApiaryError('conflict', `the users file holds ${MAX_USERS} users, the most it may`, 'name')
  checkRoles(f, roles)
  const token = newToken()
  return { file: { ...f, users: { ...f.users, [name]: { token: hashToken(token), roles: [...roles] } } }, token }
}

/** A user's token replaced: the old one stops working. */
export function rotateUser(f: UsersFile, name: string): { file: UsersFile; token: string } {
  const user = f.users[name]
  if (!user) throw notFound(name)
  const token = newToken()
  return { file: { ...f, users: { ...f.users, [name]: { ...user, token: hashToken(token) } } }, token }
}

/** A user removed; the last user who administers users cannot be (nobody could add one back without the file). */
export function revokeUser(f: UsersFile, name: string): UsersFile {
  const user = f.users[name]
  if (!user) throw notFound(name)
  const rest = Object.fromEntries(Object.entries(f.users).filter(([n]) => n !== name))
  if (isAdmin(f, user) && !Object.values(rest).some((u) => isAdmin(f, u))) {
    throw new ApiaryError('conflict', `user ${name} is the last user with an admin role: add another admin first`, 'name')
  }
  return { ...f, users: rest }
}

/** Whether an error is the users file's own fault (vs. the disk's). */
export function isFileFault(err: unknown): boolean {
  return isApiaryError(err, 'invalid_input') || isApiaryError(err, 'not_found')
}
