import { describe, expect, it } from 'vitest'
import { RoleSpec } from '@apiary/shared'
import { AccessPolicy } from './policy.ts'

const node = (id: string, labels: Record<string, string>, region = 'eu') => ({ id, region, labels })
const web1 = node('web-1', { role: 'web' })
const web2 = node('web-2', { role: 'web' })
const db1 = node('db-1', { role: 'db' })
const usWeb = node('web-9', { role: 'web' }, 'us')

const policy = new AccessPolicy({
  'web-eu': RoleSpec.parse({ operations: ['exec', 'ping'], targets: 'role=web,region=eu' }),
  'db-ping': RoleSpec.parse({ operations: ['ping'], targets: 'role=db' }),
  'db-wipe': RoleSpec.parse({ operations: ['exec'], targets: 'role=db', destructive: true }),
  canceller: RoleSpec.parse({ cancelOthers: true }),
})
const as = (name: string, ...roles: string[]) => ({ name, roles })

describe('AccessPolicy: submissions', () => {
  it('lets the built-in roles do what their names say', () => {
    const all = [web1, db1]
    expect(policy.submission(as('v', 'viewer'), { operation: 'ping', targets: all, risk: 'safe' })).toEqual({ allowed: false, reason: 'role viewer is read only' })
    expect(policy.submission(as('o', 'operator'), { operation: 'exec', targets: all, risk: 'safe' })).toEqual({ allowed: true, role: 'operator' })
    expect(policy.submission(as('o', 'operator'), { operation: 'exec', targets: all, risk: 'destructive' })).toEqual({
      allowed: false,
      reason: 'role operator does not allow destructive operations',
    })
    expect(policy.submission(as('a', 'admin'), { operation: 'exec', targets: all, risk: 'destructive' })).toEqual({ allowed: true, role: 'admin' })
  })

  it('requires every resolved target to match the role selector, and names the ones outside', () => {
    const bob = as('bob', 'web-eu')
    expect(policy.submission(bob, { operation: 'exec', targets: [web1, web2], risk: 'safe' })).toEqual({ allowed: true, role: 'web-eu' })
    expect(policy.submission(bob, { operation: 'exec', targets: [web1, usWeb], risk: 'safe' }).reason).toBe(
      'role web-eu does not allow node web-9 (outside its targets role=web,region=eu)',
    )
    const many = Array.from({ length: 10 }, (_, i) => node(`db-${i}`, { role: 'db' }))
    expect(policy.submission(bob, { operation: 'ping', targets: many, risk: 'safe' }).reason).toBe(
      'role web-eu does not allow nodes db-0, db-1, db-2 and 7 more (outside its targets role=web,region=eu)',
    )
    expect(policy.submission(bob, { operation: 'facts', targets: [web1], risk: 'safe' }).reason).toBe('role web-eu does not allow facts (only exec, ping)')
  })

  it('never combines two narrow roles into a wide one: one role must allow all of it', () => {
    const carol = as('carol', 'web-eu', 'db-ping')
    // Each role covers half of the targets: neither covers the whole.
    const v = policy.submission(carol, { operation: 'ping', targets: [web1, db1], risk: 'safe' })
    expect(v.allowed).toBe(false)
    expect(v.reason).toBe(
      'role web-eu does not allow node db-1 (outside its targets role=web,region=eu); role db-ping does not allow node web-1 (outside its targets role=db)',
    )
    expect(policy.submission(carol, { operation: 'ping', targets: [db1], risk: 'safe' })).toEqual({ allowed: true, role: 'db-ping' })
    // One role allows exec on db, another allows destructive... on web only: destructive exec on db needs db-wipe.
    const dan = as('dan', 'web-eu', 'db-ping')
    expect(policy.submission(dan, { operation: 'exec', targets: [db1], risk: 'safe' }).allowed).toBe(false)
    expect(policy.submission(as('erin', 'db-wipe'), { operation: 'exec', targets: [db1], risk: 'destructive' })).toEqual({ allowed: true, role: 'db-wipe' })
  })

  it('refuses a user with no known role', () => {
    expect(policy.submission(as('x', 'gone'), { operation: 'ping', targets: [web1], risk: 'safe' })).toEqual({ allowed: false, reason: 'user x has no role' })
  })
})

describe('AccessPolicy: cancel, re-run and admin are a union over the roles', () => {
  it('lets anyone act on their own job, others only with a role that may', () => {
    expect(policy.cancel(as('bob', 'operator'), 'bob')).toEqual({ allowed: true })
    expect(policy.cancel(as('bob', 'operator'), 'alice')).toEqual({
      allowed: false,
      reason: 'role operator does not allow acting on jobs of other users (this one was submitted by alice)',
    })
    expect(policy.cancel(as('bob', 'operator', 'canceller'), 'alice')).toEqual({ allowed: true, role: 'canceller' })
    expect(policy.cancel(as('bob', 'viewer', 'web-eu'), null).reason).toBe('roles viewer, web-eu do not allow acting on jobs of other users (this one was submitted by nobody known)')
  })

  it('lets only an admin role administer users and read the audit log', () => {
    expect(policy.admin(as('a', 'viewer', 'admin'))).toEqual({ allowed: true, role: 'admin' })
    expect(policy.admin(as('o', 'operator')).reason).toBe('role operator does not allow administering users or reading the audit log')
  })
})
