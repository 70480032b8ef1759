import { describeIdentity } from '../bus/layout.ts'
import { defineCommand } from '../cli/command.ts'
import { EXIT } from '../cli/context.ts'
import { BUS_DIR_OPTIONS, busDirOf, IDENTITY_OPTIONS, identityFromFlags, reloadHint } from './bus-options.ts'

export const busRevoke = defineCommand({
  name: 'bus revoke',
  summary: 'revoke the credential of one identity: nats-server refuses it once reloaded',
  usage: 'keeper bus revoke --role worker --region R --node-id NODE [--dir DIR]\n       keeper bus revoke --role hive|ssh-worker --region R --id ID [--dir DIR]\n       keeper bus revoke --role queen [--id ID] [--dir DIR]',
  options: { ...IDENTITY_OPTIONS, ...BUS_DIR_OPTIONS },
  args: 'none',
  async run({ values: v, globals, io }) {
    const who = identityFromFlags(v)
    const dir = busDirOf(v, globals, io.env)
    const { revokeCredential } = await import('../bus/store.ts')
    const r = await revokeCredential(dir, who)
    if (io.format !== 'text') {
      await io.out.line(JSON.stringify({ ...r, reload: true }))
      return EXIT.ok
    }
    await io.out.line(`revoked ${describeIdentity(who)}: ${r.revoked.join(', ')}`)
    await io.out.line(`re-signed the account JWT and rewrote ${r.config}${r.removed ? `; removed ${r.removed}` : ''}`)
    await io.out.line(reloadHint(r.config))
    return EXIT.ok
  },
})
