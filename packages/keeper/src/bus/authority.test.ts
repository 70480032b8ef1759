import { permissionsFor } from '@apiary/shared'
import { decode, parseCreds, type Account, type Operator, type User } from '@nats-io/jwt'
import { describe, expect, it } from 'vitest'
import { issueSystemUser, issueUser, keyFromSeed, newAuthority, seedText, signAccount, signOperator, signSystemAccount } from './authority.ts'

describe('the bus authority', () => {
  it('chains trust: operator → accounts, account signing key → users', async () => {
    const a = newAuthority()
    const op = decode<Operator>(await signOperator(a))
    expect(op).toMatchObject({ iss: a.operator.getPublicKey(), sub: a.operator.getPublicKey(), nats: { system_account: a.system.getPublicKey(), type: 'operator' } })
    const sys = decode<Account>(await signSystemAccount(a))
    expect(sys).toMatchObject({ iss: a.operator.getPublicKey(), sub: a.system.getPublicKey() })
    const acc = decode<Account>(await signAccount(a, { UREVOKED: 5 }, 2 ** 30))
    expect(acc).toMatchObject({
      iss: a.operator.getPublicKey(),
      sub: a.account.getPublicKey(),
      nats: { signing_keys: [a.signing.getPublicKey()], revocations: { UREVOKED: 5 }, limits: { disk_storage: 2 ** 30, mem_storage: 0 } },
    })

    const who = { role: 'hive', region: 'eu', id: 'hive-1' } as const
    const u = await issueUser(a.signing, a.account.getPublicKey(), who)
    const claims = decode<User>(u.jwt)
    const p = permissionsFor(who)
    expect(claims).toMatchObject({ iss: a.signing.getPublicKey(), sub: u.publicKey, name: 'hive.eu.hive-1', nats: { issuer_account: a.account.getPublicKey(), pub: { allow: p.pub }, sub: { allow: p.sub }, resp: { max: 1 } } })
    const parsed = await parseCreds(u.creds)
    expect(parsed).toMatchObject({ jwt: u.jwt, aid: a.account.getPublicKey() })
    expect(parsed.key).toMatch(/^SU/)
  })

  it("signs keeper's system user with the system account's own key", async () => {
    const a = newAuthority()
    const u = await issueSystemUser(a)
    const claims = decode<User>(u.jwt)
    expect(claims).toMatchObject({ iss: a.system.getPublicKey(), sub: u.publicKey, name: 'keeper.system', nats: { pub: { allow: [`$SYS.REQ.ACCOUNT.${a.account.getPublicKey()}.CLAIMS.UPDATE`] } } })
    expect(claims.nats).not.toHaveProperty('issuer_account')
    expect(await parseCreds(u.creds)).toMatchObject({ jwt: u.jwt, aid: a.system.getPublicKey() })
  })

  it('gives every issue a new user key', async () => {
    const a = newAuthority()
    const who = { role: 'worker', region: 'eu', id: 'web-1' } as const
    const [x, y] = await Promise.all([issueUser(a.signing, a.account.getPublicKey(), who), issueUser(a.signing, a.account.getPublicKey(), who)])
    expect(x.publicKey).not.toBe(y.publicKey)
  })

  it('reads a seed back, naming the file when it holds something else', () => {
    const a = newAuthority()
    expect(keyFromSeed(seedText(a.operator), 'SO', 'operator.nk').getPublicKey()).toBe(a.operator.getPublicKey())
    expect(() => keyFromSeed(seedText(a.account), 'SO', '/b/operator.nk')).toThrow('/b/operator.nk does not hold a valid operator nkey seed')
    expect(() => keyFromSeed('SAnonsense', 'SA', '/b/account.nk')).toThrow('/b/account.nk does not hold a valid account nkey seed')
  })
})
