import { describeIdentity } from '../bus/layout.ts'
import { defineCommand } from '../cli/command.ts'
import { EXIT } from '../cli/context.ts'
import { applyHint, BUS_DIR_OPTIONS, busDirOf, IDENTITY_OPTIONS, identityFromFlags, outPath } from './bus-options.ts'

export const busIssue = defineCommand({
  name: 'bus issue',
  summary: 'issue the NATS credential of one identity (a .creds file) with its least-privilege permissions',
  usage:
    'keeper bus issue --role worker --region R --node-id NODE [--dir DIR] [--out FILE]\n' +
    '       keeper bus issue --role hive|ssh-worker --region R --id ID [--dir DIR] [--out FILE]\n' +
    '       keeper bus issue --role queen [--id ID] [--dir DIR] [--out FILE]\n' +
    'Issuing an identity again revokes its previous key (then keeper bus push, or reload nats-server).',
  options: {
    ...IDENTITY_OPTIONS,
    ...BUS_DIR_OPTIONS,
    out: { type: 'string', value: 'FILE', help: 'where to write the .creds file, mode 0600 (default <dir>/creds/<role>.<region>.<id>.creds)' },
  },
  args: 'none',
  async run({ values: v, globals, io }) {
    const who = identityFromFlags(v)
    const dir = busDirOf(v, globals, io.env)
    // Loaded here, not at start: the JWT and nkey libraries are for this command alone.
    const { issueCredential } = await import('../bus/store.ts')
    const r = await issueCredential(dir, who, v.out === undefined ? {} : { out: await outPath(v.out) })
    if (io.format !== 'text') {
      await io.out.line(JSON.stringify(r))
      return EXIT.ok
    }
    await io.out.line(`${describeIdentity(who)}: ${r.creds} (user ${r.publicKey})`)
    if (r.configs !== undefined) {
      await io.out.line(`revoked its previous key${r.revoked.length === 1 ? '' : 's'} ${r.revoked.join(', ')}; rewrote ${r.configs.join(', ')}`)
      await io.out.line(applyHint(r.configs, v.dir === undefined ? '' : ` --dir ${dir}`))
    }
    return EXIT.ok
  },
})
