import { unwatchFile, watchFile } from 'node:fs'
import { ApiaryError, errorMessage, isApiaryError, type Logger, type UserInfo, type UsersFile } from '@apiary/shared'
import { AccessPolicy, type Principal } from './policy.ts'
import { addUser, hashToken, loadUsersFile, revokeUser, rotateUser, withUsersLock, writeUsersFile } from './users-file.ts'

/** The user a request authenticated as, and a signal that aborts when its token stops being valid. */
export interface Authenticated {
  user: Principal
  signal: AbortSignal
}

export interface UserRegistryOptions {
  /** The users file; absent: the bootstrap token is the one user, `admin`. */
  file?: string
  /** The token of `<state>/token`: the admin of a file created on first start. */
  bootstrapToken: string
  log: Logger
  pollMs?: number
  /** Told of every re-read of the file after the first, good or refused (for the audit log). */
  onReload?: (r: { ok: true; users: number } | { ok: false; error: string }) => void
}

/**
 * The users the queen knows, by token hash, from the users file it watches: a new version is
 * taken whole, a bad one refused with its line and field while the last good one stays. A
 * token that stops being valid (rotated, revoked, removed from the file) aborts the signal of
 * every request made with it, so an open event stream ends at once. Changes through the API
 * re-read the file first and write it back atomically, so an edit made meanwhile is not lost.
 *
 * @example
 * const users = await UserRegistry.open({ file: 'users.yaml', bootstrapToken, log })
 * users.authenticate(token)?.user.name // 'admin'
 */
export class UserRegistry {
  #file: UsersFile
  #policy: AccessPolicy
  #byHash = new Map<string, Principal>()
  /** One controller per token hash seen in a request, aborted when that hash stops mapping to its user. */
  readonly #signals = new Map<string, { user: string; ctl: AbortController }>()
  #changes: Promise<unknown> = Promise.resolve()
  #closed = false

  private constructor(
    private readonly o: UserRegistryOptions,
    file: UsersFile,
    private readonly onFileChange?: () => void,
  ) {
    this.#file = file
    this.#policy = new AccessPolicy(file.roles)
    this.#index()
  }

  /**
   * Loads the users: the file (created, 0600, holding one admin with the bootstrap token's hash,
   * when it does not exist), or without a file the bootstrap admin alone. A bad file at start
   * is refused: the queen does not start on it.
   */
  static async open(o: UserRegistryOptions): Promise<UserRegistry> {
    const bootstrap: UsersFile = { roles: {}, users: { admin: { token: hashToken(o.bootstrapToken), roles: ['admin'] } } }
    if (o.file === undefined) return new UserRegistry(o, bootstrap)
    const path = o.file
    let file: UsersFile
    try {
      file = await loadUsersFile(path)
    } catch (err) {
      if (!isApiaryError(err, 'not_found')) throw err
      try {
        await writeUsersFile(path, bootstrap, { exclusive: true })
        o.log.info({ usersFile: path }, 'created the users file: user admin holds the token of the token file')
      } catch (e) {
        // Another queen made it first: read theirs.
        if (!isApiaryError(e, 'conflict')) throw e
      }
      file = await loadUsersFile(path)
    }
    const reg: UserRegistry = new UserRegistry(o, file, () => void reg.reload())
    o.log.info({ usersFile: path, users: Object.keys(file.users).length, roles: Object.keys(file.roles).length }, 'users loaded')
    watchFile(path, { interval: o.pollMs ?? 2000, persistent: false }, reg.onFileChange!)
    return reg
  }

  get policy(): AccessPolicy {
    return this.#policy
  }

  /** Whether users are managed in a file (and so may be changed). */
  get managed(): boolean {
    return this.o.file !== undefined
  }

  /** The user a token belongs to; undefined for a token nobody holds. */
  authenticate(token: string): Authenticated | undefined {
    const hash = hashToken(token)
    const user = this.#byHash.get(hash)
    if (!user) return undefined
    let entry = this.#signals.get(hash)
    if (!entry) this.#signals.set(hash, (entry = { user: user.name, ctl: new AbortController() }))
    return { user, signal: entry.ctl.signal }
  }

  list(): UserInfo[] {
    return Object.entries(this.#file.users)
      .map(([name, u]) => ({ name, roles: [...u.roles] }))
      .sort((a, b) => a.name.localeCompare(b.name))
  }

  get(name: string): UserInfo | undefined {
    const u = this.#file.users[name]
    return u ? { name, roles: [...u.roles] } : undefined
  }

  /** Adds a user; the token is returned once and kept nowhere but as its hash. */
  add(name: string, roles: readonly string[]): Promise<{ token: string; user: UserInfo }> {
    return this.#change((f) => {
      const r = addUser(f, name, roles)
      return { file: r.file, out: { token: r.token, user: { name, roles: [...roles] } } }
    })
  }

  /** A new token for a user; the old one stops working at once. */
  rotate(name: string): Promise<{ token: string; user: UserInfo }> {
    return this.#change((f) => {
      const r = rotateUser(f, name)
      return { file: r.file, out: { token: r.token, user: { name, roles: [...r.file.users[name]!.roles] } } }
    })
  }

  /** Removes a user; their token stops working at once. */
  revoke(name: string): Promise<UserInfo> {
    return this.#change((f) => {
      const user = f.users[name]
      return { file: revokeUser(f, name), out: { name, roles: [...(user?.roles ?? [])] } }
    })
  }

  /** Re-reads the file; a bad version is refused (and logged) and the last good one kept. */
  async reload(): Promise<{ ok: true; users: number } | { ok: false; error: string }> {
    if (this.o.file === undefined || this.#closed) return { ok: false, error: 'no users file' }
    try {
      const f = await loadUsersFile(this.o.file)
      if (this.#closed) return { ok: false, error: 'closed' }
      this.#install(f)
      const r = { ok: true as const, users: Object.keys(f.users).length }
      this.o.log.info({ usersFile: this.o.file, users: r.users }, 'users reloaded')
      this.o.onReload?.(r)
      return r
    } catch (err) {
      const r = { ok: false as const, error: errorMessage(err) }
      this.o.log.error({ usersFile: this.o.file, problem: r.error }, 'users file refused; keeping the last good one')
      this.o.onReload?.(r)
      return r
    }
  }

  close(): void {
    this.#closed = true
    if (this.o.file !== undefined && this.onFileChange) unwatchFile(this.o.file, this.onFileChange)
  }

  /** One change at a time, across every process that shares the file: the file as it is on disk now, changed, written back, then taken. */
  #change<T>(fn: (f: UsersFile) => { file: UsersFile; out: T }): Promise<T> {
    const path = this.o.file
    if (path === undefined) {
      return Promise.reject(new ApiaryError('conflict', 'this queen has no users file: start it with --users-file to manage users', 'users-file'))
    }
    const run = () =>
      withUsersLock(path, async () => {
        const current = await loadUsersFile(path).catch((err: unknown) => {
          throw new ApiaryError('conflict', `the users file cannot be read, so it is not changed: ${errorMessage(err)}`, 'users-file', { cause: err })
        })
        const { file, out } = fn(current)
        await writeUsersFile(path, file)
        this.#install(file)
        return out
      })
    const p = this.#changes.then(run, run)
    this.#changes = p.catch(() => undefined)
    return p
  }

  #install(f: UsersFile): void {
    this.#file = f
    this.#policy = new AccessPolicy(f.roles)
    this.#index()
  }

  #index(): void {
    const byHash = new Map<string, Principal>()
    for (const [name, u] of Object.entries(this.#file.users)) byHash.set(u.token, Object.freeze({ name, roles: Object.freeze([...u.roles]) }))
    this.#byHash = byHash
    for (const [hash, entry] of this.#signals) {
      if (byHash.get(hash)?.name === entry.user) continue
      entry.ctl.abort(new ApiaryError('unauthorized', `the token of user ${entry.user} is no longer valid`))
      this.#signals.delete(hash)
    }
  }
}
