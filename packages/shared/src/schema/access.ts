import { z } from 'zod'
import { SelectorText } from './targets.ts'

/**
 * Users, roles and the audit log: the users file the queen reads, the `/v1/users` and
 * `/v1/audit` bodies, and the audit record every queen appends. See docs/access.md.
 */

/** What a role may submit; an empty list is read only. */
export const OPERATION_TYPES = ['exec', 'facts', 'ping'] as const
export const OperationType = z.enum(OPERATION_TYPES)
export type OperationType = z.infer<typeof OperationType>

/** The most users and roles one file may hold, and roles per user. */
export const MAX_USERS = 10_000
export const MAX_ROLES = 1000
export const MAX_USER_ROLES = 16

const NAME = /^[a-z][a-z0-9_.-]{0,62}$/
export const UserName = z.string().regex(NAME, 'a name starts with a lowercase letter and holds only a-z, 0-9, ".", "_" or "-" (at most 63)')
export const RoleName = UserName

/** A token as stored: the SHA-256 of the token, never the token (tokens are random, not passwords). */
export const TokenHash = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:" and 64 lowercase hex digits (the SHA-256 of the token)')

/**
 * What a person holding the role may do. A submission is allowed when one role allows all of
 * it: the operation, every resolved target, and its risk.
 */
export const RoleSpec = z.strictObject({
  /** Operations it may submit (exec, facts, ping); none: read only. */
  operations: z.array(OperationType).max(OPERATION_TYPES.length).default([]),
  /** A selector every resolved target must match (`role=web,region=eu`); default every node. */
  targets: SelectorText.default('all'),
  /** Whether operations the risk classifier calls destructive are allowed. */
  destructive: z.boolean().default(false),
  /** Whether it may cancel and re-run jobs other users submitted. */
  cancelOthers: z.boolean().default(false),
  /** Whether it administers users and reads the audit log. */
  admin: z.boolean().default(false),
})
export type RoleSpec = z.output<typeof RoleSpec>

/** The roles every queen knows; a users file may not redefine them. */
export const BUILTIN_ROLES: Readonly<Record<'viewer' | 'operator' | 'admin', RoleSpec>> = Object.freeze({
  viewer: { operations: [], targets: 'all', destructive: false, cancelOthers: false, admin: false },
  operator: { operations: ['exec', 'facts', 'ping'], targets: 'all', destructive: false, cancelOthers: false, admin: false },
  admin: { operations: ['exec', 'facts', 'ping'], targets: 'all', destructive: true, cancelOthers: true, admin: true },
})

export const UserSpec = z.strictObject({
  token: TokenHash,
  roles: z.array(RoleName).min(1, 'a user needs at least one role').max(MAX_USER_ROLES),
})
export type UserSpec = z.output<typeof UserSpec>

/**
 * The users file (YAML or JSON):
 * ```yaml
 * roles:
 *   web-deployer: { operations: [exec, ping], targets: "role=web,region=eu" }
 * users:
 *   alice: { token: "sha256:…", roles: [admin] }
 *   bob:   { token: "sha256:…", roles: [web-deployer, viewer] }
 * ```
 */
export const UsersFile = z.strictObject({
  roles: z.record(RoleName, RoleSpec).default({}),
  users: z.record(UserName, UserSpec).default({}),
})
export type UsersFile = z.output<typeof UsersFile>

/** A user as `GET /v1/users` shows it: never the token or its hash. */
export const UserInfo = z.object({ name: UserName, roles: z.array(RoleName) })
export type UserInfo = z.infer<typeof UserInfo>

/** The body of `POST /v1/users`. */
export const AddUserRequest = z.strictObject({ name: UserName, roles: z.array(RoleName).min(1).max(MAX_USER_ROLES) })
export type AddUserRequest = z.infer<typeof AddUserRequest>

/** The answer to add and rotate: the token, shown this once. */
export const IssuedToken = z.object({ name: UserName, roles: z.array(RoleName), token: z.string() })
export type IssuedToken = z.infer<typeof IssuedToken>

/** Whether a role of the caller would allow a submission, and if not which rule refuses it. */
export const AccessVerdict = z.object({
  allowed: z.boolean(),
  /** The role that allows it. */
  role: z.string().optional(),
  /** Why not, naming the role and the rule: `role operator does not allow destructive operations`. */
  reason: z.string().optional(),
})
export type AccessVerdict = z.infer<typeof AccessVerdict>

export const AUDIT_KINDS = [
  'login',
  'auth.failed',
  'job.submitted',
  'job.rerun',
  'job.cancelled',
  'refused',
  'user.added',
  'user.rotated',
  'user.revoked',
  'users.reloaded',
  /** Retention removed the records up to `detail.upTo`, the last of which hashed to `detail.hash`. */
  'audit.pruned',
] as const
export const AuditKind = z.enum(AUDIT_KINDS)
export type AuditKind = z.infer<typeof AuditKind>

/** The previous hash of the first record ever appended. */
export const AUDIT_GENESIS = '0'.repeat(64)

/**
 * One audit record. `hash` is the SHA-256 of the canonical JSON (sorted keys, no whitespace)
 * of the record without `hash`; `prev` is the hash of the record before it. Kind-specific
 * facts sit in `detail`; they never hold a token, a token's hash, an env value or stdin.
 * Loose: a key added to a stored record is kept, so the hash check sees it.
 */
const AUDIT_RECORD = {
  seq: z.number().int().min(1),
  ts: z.number().int(),
  /** The queen that answered the request (each queen keeps its own chain). */
  queen: z.string(),
  kind: AuditKind,
  /** Who: absent for a failed authentication. */
  user: z.string().optional(),
  /** The source address of the request. */
  source: z.string().optional(),
  detail: z.record(z.string(), z.unknown()),
  prev: z.string(),
  hash: z.string(),
}
export const AuditRecord = z.looseObject(AUDIT_RECORD)
export type AuditRecord = z.infer<z.ZodObject<typeof AUDIT_RECORD>>

export const AuditHead = z.object({ seq: z.number().int().min(0), hash: z.string() })
export type AuditHead = z.infer<typeof AuditHead>

/** A page of `GET /v1/audit`: records with `seq > after`; `next` is where the following page starts, null at the end. */
export const AuditPage = z.object({ records: z.array(AuditRecord), next: z.number().int().nullable(), head: AuditHead })
export type AuditPage = z.infer<typeof AuditPage>

/** The most records one page of `GET /v1/audit` holds. */
export const MAX_AUDIT_PAGE = 1000
