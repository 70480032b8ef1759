import { z } from 'zod'

/** What the nats-server config listens on, and its TLS files (absolute paths). */
export const ServerSettings = z.object({
  host: z.string().regex(/^[^\s"'\\]+$/, 'must be a host name or an address'),
  port: z.number().int().min(0).max(65535),
  tls: z.object({ cert: z.string(), key: z.string(), ca: z.string().optional() }).optional(),
  /** Where the config is written (and rewritten by revoke and re-issue). */
  path: z.string(),
})
export type ServerSettings = z.infer<typeof ServerSettings>

export const DEFAULT_HOST = '127.0.0.1'
export const DEFAULT_PORT = 4222

export interface AccountJwt {
  name: string
  publicKey: string
  jwt: string
}

export interface ServerConfigInput {
  settings: Omit<ServerSettings, 'path'>
  operatorJwt: string
  /** The system account, which nats-server needs in operator mode. */
  system: AccountJwt
  /** The other accounts (apiary's). */
  accounts: readonly AccountJwt[]
}

/** A string as nats-server's config reads it. */
function q(s: string): string {
  return JSON.stringify(s)
}

/**
 * The nats-server config (2.9 and later) that trusts apiary's operator and knows its
 * accounts: `resolver: MEMORY` with the account JWTs preloaded, so no account server is
 * needed. It is what the server reads when it starts (or reloads); a revocation reaches a
 * running server as a push of the account JWT (`pushAccountClaims`).
 * Every connection must then present a user JWT signed for one of these accounts, and gets
 * only the permissions in it.
 */
export function serverConfig(c: ServerConfigInput): string {
  const s = c.settings
  const lines = [
    '# nats-server config for apiary, written by `keeper bus server-config`. Regenerate it (keeper bus',
    '# server-config; keeper bus revoke and a re-issue rewrite it) rather than edit it.',
    `host: ${q(s.host)}`,
    `port: ${s.port}`,
    '',
    '# An operation may carry 1 MiB of stdin, which travels JSON-encoded in the task (escapes can make',
    '# it several times larger): the default max_payload of 1 MB would refuse it. 8 MB is the most',
    '# nats-server recommends.',
    'max_payload: 8MB',
    '',
    '# Decentralized auth: the operator signs the accounts; users are signed by the account.',
    `operator: ${q(c.operatorJwt)}`,
    `system_account: ${c.system.publicKey}`,
    'resolver: MEMORY',
    'resolver_preload: {',
    ...[...c.accounts, c.system].flatMap((a) => [`  # ${a.name}`, `  ${a.publicKey}: ${q(a.jwt)}`]),
    '}',
  ]
  if (s.tls) {
    lines.push(
      '',
      s.tls.ca ? '# TLS with client certificates (mTLS): a client must present one signed by the CA.' : '# TLS: clients verify the server.',
      'tls {',
      `  cert_file: ${q(s.tls.cert)}`,
      `  key_file: ${q(s.tls.key)}`,
      ...(s.tls.ca ? [`  ca_file: ${q(s.tls.ca)}`, '  verify: true'] : []),
      '}',
    )
  }
  return `${lines.join('\n')}\n`
}
