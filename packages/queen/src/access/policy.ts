import {
  type AccessVerdict,
  BUILTIN_ROLES,
  matchesSelector,
  type OperationType,
  parseSelector,
  type RiskClass,
  type RoleSpec,
  type SelectableNode,
  type Selector,
} from '@apiary/shared'

/** Who makes a request: a user of the users file (or the bootstrap admin). */
export interface Principal {
  readonly name: string
  readonly roles: readonly string[]
}

/** What a submission asks for, once its targets are resolved and its risk classified. */
export interface Submission {
  operation: OperationType
  targets: readonly SelectableNode[]
  risk: RiskClass
}

interface CompiledRole {
  name: string
  spec: RoleSpec
  selector: Selector
}

/** Outside nodes named in a refusal, at most. */
const NAMED_NODES = 3

/**
 * The access policy: what each role allows, applied to a user's roles. Per rule a user gets
 * the union of their roles (any role that may cancel others' jobs lets them), but a submission
 * must be allowed by ONE role entirely — its operation, every target and its risk — so two
 * narrow roles never add up to a wide one. Pure: no I/O, no clock.
 *
 * @example
 * const policy = new AccessPolicy({ web: { operations: ['exec'], targets: 'role=web', destructive: false, cancelOthers: false, admin: false } })
 * policy.submission({ name: 'bob', roles: ['web'] }, { operation: 'exec', targets: nodes, risk: 'safe' })
 * // { allowed: false, reason: 'role web does not allow node db-1 (outside its targets role=web)' }
 */
export class AccessPolicy {
  readonly #roles = new Map<string, CompiledRole>()

  /** `roles`: the file's own roles; the built-in viewer, operator and admin are always there. */
  constructor(roles: Readonly<Record<string, RoleSpec>> = {}) {
    for (const [name, spec] of Object.entries({ ...roles, ...BUILTIN_ROLES })) {
      const parsed = parseSelector(spec.targets)
      // The users file schema checked every selector; a bad one here is a bug, and must allow nothing.
      if (!parsed.ok) throw new Error(`role ${name}: targets ${parsed.error}`)
      this.#roles.set(name, { name, spec, selector: parsed.selector })
    }
  }

  has(role: string): boolean {
    return this.#roles.has(role)
  }

  /** Whether one role of the user allows the whole submission; if none does, each role's first refusing rule. */
  submission(user: Principal, s: Submission): AccessVerdict {
    const reasons: string[] = []
    for (const role of this.#rolesOf(user)) {
      const why = refusal(role, s)
      if (why === undefined) return { allowed: true, role: role.name }
      reasons.push(why)
    }
    return { allowed: false, reason: reasons.length > 0 ? reasons.join('; ') : `user ${user.name} has no role` }
  }

  /** Cancelling (or re-running) a job: one's own, or anyone's with a role that may cancel others' jobs. */
  cancel(user: Principal, owner: string | null): AccessVerdict {
    if (owner !== null && owner === user.name) return { allowed: true }
    const role = this.#rolesOf(user).find((r) => r.spec.cancelOthers)
    if (role) return { allowed: true, role: role.name }
    return { allowed: false, reason: `${this.#named(user)} not allow acting on jobs of other users (this one was submitted by ${owner ?? 'nobody known'})` }
  }

  /** Administering users and reading the audit log. */
  admin(user: Principal): AccessVerdict {
    const role = this.#rolesOf(user).find((r) => r.spec.admin)
    if (role) return { allowed: true, role: role.name }
    return { allowed: false, reason: `${this.#named(user)} not allow administering users or reading the audit log` }
  }

  /**
   * Granting roles (adding a user with them; rotating or revoking a user who holds them): an
   * admin role of the user must hold every power each of them gives (its operations, targets,
   * destructive, cancelling others' jobs), so administering users never adds up to more than
   * the administrator may do. An unknown role gives nothing and needs nothing.
   */
  grant(user: Principal, roles: readonly string[]): AccessVerdict {
    const mine = this.#rolesOf(user).filter((r) => r.spec.admin)
    if (mine.length === 0) return this.admin(user)
    for (const name of roles) {
      const wanted = this.#roles.get(name)
      if (!wanted) continue
      if (!mine.some((r) => covers(r.spec, wanted.spec))) {
        return { allowed: false, reason: `${mine.length === 1 ? `role ${mine[0]!.name} does` : `roles ${mine.map((r) => r.name).join(', ')} do`} not hold every power of role ${name}, so may not grant it, nor rotate or revoke a user who holds it` }
      }
    }
    return { allowed: true, role: mine[0]!.name }
  }

  #rolesOf(user: Principal): CompiledRole[] {
    return user.roles.flatMap((r) => this.#roles.get(r) ?? [])
  }

  /** `role operator does` / `roles viewer, operator do`. */
  #named(user: Principal): string {
    const names = this.#rolesOf(user).map((r) => r.name)
    if (names.length === 0) return `user ${user.name} has no role that does`
    return names.length === 1 ? `role ${names[0]} does` : `roles ${names.join(', ')} do`
  }
}

/** The first rule of `role` that refuses the submission, in an operator's words; undefined if it allows it. */
function refusal(role: CompiledRole, s: Submission): string | undefined {
  const { spec } = role
  if (!spec.operations.includes(s.operation)) {
    return spec.operations.length === 0 ? `role ${role.name} is read only` : `role ${role.name} does not allow ${s.operation} (only ${spec.operations.join(', ')})`
  }
  if (s.risk === 'destructive' && !spec.destructive) return `role ${role.name} does not allow destructive operations`
  const outside: string[] = []
  let count = 0
  for (const node of s.targets) {
    if (matchesSelector(role.selector, node)) continue
    count++
    if (outside.length < NAMED_NODES) outside.push(node.id)
  }
  if (count === 0) return undefined
  const more = count > outside.length ? ` and ${count - outside.length} more` : ''
  return `role ${role.name} does not allow node${count === 1 ? '' : 's'} ${outside.join(', ')}${more} (outside its targets ${spec.targets})`
}

/** Whether `a` gives every power `b` gives. A selector is compared as text: only `all` covers another. */
function covers(a: RoleSpec, b: RoleSpec): boolean {
  return (
    b.operations.every((op) => a.operations.includes(op)) &&
    (a.targets.trim() === 'all' || a.targets.trim() === b.targets.trim()) &&
    (a.destructive || !b.destructive) &&
    (a.cancelOthers || !b.cancelOthers) &&
    (a.admin || !b.admin)
  )
}
