import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ApiaryError, ChainVerifier, describeVerdict, errorMessage, isApiaryError } from '@apiary/shared'
import { defaultStateDir, type OptionTable, parseCommandLine } from '@apiary/shared/runtime'
import { AuditLog } from './audit.ts'
import { addUser, loadUsersFile, revokeUser, rotateUser, withUsersLock, writeUsersFile } from './users-file.ts'

export const OFFLINE_USAGE = `usage: apiary-queen users list|add NAME --role ROLE…|rotate NAME|revoke NAME --users-file FILE
       apiary-queen audit verify [--state-dir DIR]

Changes the users file in place (atomically, mode 0600) with no queen running; a running queen
watching the file takes the change within seconds. A new or rotated token is printed once on
stdout. audit verify checks the hash chain of <state dir>/audit.db: exit 0 intact, 1 broken.`

const USERS_OPTIONS = {
  'users-file': { type: 'string', env: 'APIARY_USERS_FILE', value: 'FILE', help: 'the users file' },
  role: { type: 'string', multiple: true, value: 'ROLE', help: 'a role of the user to add (repeat for several)' },
} as const satisfies OptionTable
const AUDIT_OPTIONS = {
  'state-dir': { type: 'string', env: 'APIARY_STATE_DIR', value: 'DIR', help: 'the queen’s state directory (default $XDG_STATE_HOME/apiary)' },
} as const satisfies OptionTable

export interface OfflineIo {
  out(line: string): void
  err(line: string): void
}

/** Whether a command line is an offline command (`users …`, `audit …`) rather than a start. */
export function isOfflineCommand(argv: readonly string[]): boolean {
  return argv[0] === 'users' || argv[0] === 'audit'
}

/**
 * `apiary-queen users …` and `apiary-queen audit verify`, run without a queen: the exit code.
 * Usage errors and a bad file are 2, a broken chain 1.
 */
export async function runOffline(argv: string[], env: NodeJS.ProcessEnv, io: OfflineIo): Promise<number> {
  try {
    return argv[0] === 'users' ? await users(argv.slice(1), env, io) : await audit(argv.slice(1), env, io)
  } catch (err) {
    io.err(`apiary-queen: ${errorMessage(err)}`)
    return isApiaryError(err, 'invalid_input') || isApiaryError(err, 'not_found') || isApiaryError(err, 'conflict') ? 2 : 1
  }
}

async function users(argv: string[], env: NodeJS.ProcessEnv, io: OfflineIo): Promise<number> {
  const { values: v, positionals } = parseCommandLine('apiary-queen users', USERS_OPTIONS, argv, env, { positionals: true })
  const [sub, name, ...more] = positionals
  const file = v['users-file']
  if (file === undefined) throw new ApiaryError('invalid_input', '--users-file (or APIARY_USERS_FILE) is required', '--users-file')
  const wantsName = sub === 'add' || sub === 'rotate' || sub === 'revoke'
  if (!(wantsName || sub === 'list') || (wantsName ? name === undefined : name !== undefined) || more.length > 0) {
    throw new ApiaryError('invalid_input', OFFLINE_USAGE.split('\n')[0]!, 'command')
  }
  const roles = v.role.flatMap((r) => r.split(',')).filter(Boolean)
  if (sub === 'add' && roles.length === 0) throw new ApiaryError('invalid_input', '--role: a new user needs at least one role (viewer, operator, admin, …)', '--role')
  if (sub === 'list') {
    const f = await loadUsersFile(file)
    for (const [n, u] of Object.entries(f.users).sort(([a], [b]) => a.localeCompare(b))) io.out(`${n}\t${u.roles.join(',')}`)
    return 0
  }
  // Under the lock the queens take for their changes: none is lost between them.
  return withUsersLock(file, async () => {
    const f = await loadUsersFile(file)
    if (sub === 'revoke') {
      await writeUsersFile(file, revokeUser(f, name!))
      io.err(`user ${name} revoked`)
      return 0
    }
    const r = sub === 'add' ? addUser(f, name!, roles) : rotateUser(f, name!)
    await writeUsersFile(file, r.file)
    io.err(sub === 'add' ? `user ${name} added; its token (shown once) is on stdout` : `user ${name} has a new token (shown once, on stdout); the old one no longer works`)
    io.out(r.token)
    return 0
  })
}

async function audit(argv: string[], env: NodeJS.ProcessEnv, io: OfflineIo): Promise<number> {
  const { values: v, positionals } = parseCommandLine('apiary-queen audit', AUDIT_OPTIONS, argv, env, { positionals: true })
  if (positionals.length !== 1 || positionals[0] !== 'verify') throw new ApiaryError('invalid_input', OFFLINE_USAGE.split('\n')[1]!.trim(), 'command')
  const path = join(v['state-dir'] ?? defaultStateDir(env), 'audit.db')
  if (!existsSync(path)) throw new ApiaryError('not_found', `no audit log at ${path}`, '--state-dir')
  // Read as found: opening it to append would make a dropped table anew, and verify it empty.
  if (!AuditLog.hasTable(path)) {
    io.out(`broken: ${path} holds no audit table (it was dropped)`)
    return 1
  }
  const log = AuditLog.open(path, { queenId: 'verify' })
  try {
    const verifier = new ChainVerifier()
    for (const r of log.all()) if (!verifier.push(r)) break
    const verdict = verifier.verdict()
    for (const l of describeVerdict(verdict)) io.out(l)
    return verdict.intact ? 0 : 1
  } finally {
    log.close()
  }
}
