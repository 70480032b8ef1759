import { join } from 'node:path'
import type { Identity } from '@apiary/shared'
import { type ConfiguredNats, startNatsWithConfig } from './nats-secure.ts'
import { runBin } from './process.ts'

export interface SecureBus {
  /** The `keeper bus` directory: keys, registry, server config, credentials. */
  dir: string
  nats: ConfiguredNats
  url: string
  /** The `.creds` file of an issued identity. */
  creds(who: Identity): string
  /** Issues one more identity (as an operator enrols a node). */
  issue(who: Identity): Promise<string>
  /** Revokes an identity; the running server drops it at once, and only it. */
  revoke(who: Identity): Promise<void>
  stop(): Promise<void>
}

/** The flags that pick an identity, as `keeper bus issue` and `revoke` take them. */
function identityFlags(who: Identity): string[] {
  if (who.role === 'queen') return ['--role', 'queen', '--id', who.id]
  return ['--role', who.role, '--region', who.region ?? '', who.role === 'worker' ? '--node-id' : '--id', who.id]
}

async function keeperBus(dir: string, args: string[]): Promise<string> {
  const r = await runBin('keeper', ['bus', ...args, '--dir', dir])
  if (r.code !== 0) throw new Error(`keeper bus ${args.join(' ')} exited ${r.code}: ${r.stderr}`)
  return r.stdout
}

/**
 * The documented secure setup, made with apiary's own commands: `keeper bus init`, one
 * credential per identity, and a real nats-server running the configuration `keeper bus`
 * wrote (decentralized JWT auth, least privilege per identity).
 */
export async function startSecureBus(root: string, identities: readonly Identity[]): Promise<SecureBus> {
  const dir = join(root, 'bus')
  await keeperBus(dir, ['init'])
  const creds = (who: Identity) => join(dir, 'creds', who.role === 'queen' ? `queen.${who.id}.creds` : `${who.role}.${who.region}.${who.id}.creds`)
  const issue = async (who: Identity) => {
    await keeperBus(dir, ['issue', ...identityFlags(who)])
    return creds(who)
  }
  for (const who of identities) await issue(who)
  const nats = await startNatsWithConfig(join(dir, 'nats-server.conf'))
  return {
    dir,
    nats,
    url: nats.url,
    creds,
    issue,
    async revoke(who) {
      // Pushed to the running server: only the revoked identity's connection drops.
      await keeperBus(dir, ['revoke', ...identityFlags(who), '--server', nats.url])
    },
    stop: () => nats.stop(),
  }
}
