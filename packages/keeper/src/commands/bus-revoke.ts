import { describeIdentity } from '../bus/layout.ts'
import { defineCommand } from '../cli/command.ts'
import { EXIT } from '../cli/context.ts'
import { BUS_DIR_OPTIONS, busDirOf, IDENTITY_OPTIONS, identityFromFlags, PUSH_OPTIONS, pushFlagsOf } from './bus-options.ts'
import { pushExitCode, reportPush } from './bus-push.ts'

export const busRevoke = defineCommand({
  name: 'bus revoke',
  summary: 'revoke the credential of one identity: the running nats-server closes its connections and refuses it',
  usage:
    'keeper bus revoke --role worker --region R --node-id NODE [--dir DIR] [PUSH FLAGS]\n' +
    '       keeper bus revoke --role hive|ssh-worker --region R --id ID [--dir DIR] [PUSH FLAGS]\n' +
    '       keeper bus revoke --role queen [--id ID] [--dir DIR] [PUSH FLAGS]\n' +
    'PUSH FLAGS: [--server nats://HOST:PORT] [--tls-ca FILE] [--tls-cert FILE --tls-key FILE]\n' +
    'Rewrites the account JWT and nats-server.conf, then pushes the JWT to the running nats-server as\n' +
    "keeper's system user (sys.creds): only the revoked connections close. Exit 4 when nats-server\n" +
    'cannot be reached, 1 when it did not take the JWT: the config is written, reload nats-server then.',
  options: { ...IDENTITY_OPTIONS, ...BUS_DIR_OPTIONS, ...PUSH_OPTIONS },
  args: 'none',
  async run({ values: v, globals, io }) {
    const who = identityFromFlags(v)
    const dir = busDirOf(v, globals, io.env)
    // Checked before anything changes: a revoke with a mistyped flag changes nothing.
    const flags = await pushFlagsOf(v)
    const [{ revokeCredential }, { pusher }] = await Promise.all([import('../bus/store.ts'), import('../bus/push.ts')])
    const r = await revokeCredential(dir, who, { push: pusher(flags, { signal: io.interrupt }) })
    const { push } = r
    if (io.format !== 'text') {
      await io.out.line(JSON.stringify({ ...r, reload: !push.ok }))
      return pushExitCode(push)
    }
    await io.out.line(`revoked ${describeIdentity(who)}: ${r.revoked.join(', ')}`)
    await io.out.line(`re-signed the account JWT and rewrote ${r.configs.join(', ')}${r.removed ? `; removed ${r.removed}` : ''}`)
    return reportPush(io, push, r.configs, v.dir === undefined ? '' : ` --dir ${dir}`, r.systemIssued)
  },
})
