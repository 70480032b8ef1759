import { ApiaryError } from '@apiary/shared'
import { defineCommand } from '../cli/command.ts'
import { EXIT } from '../cli/context.ts'
import { table } from '../render/output.ts'
import { printJson } from '../render/records.ts'

const USAGE = 'keeper users list | add NAME --role ROLE [--role ROLE…] | rotate NAME | revoke NAME'

/**
 * `keeper users`: the users of the queen it talks to (admin only). A new or rotated token goes
 * to stdout once, alone on its line (`keeper users add bob --role operator > bob.token`); what
 * happened goes to stderr. The token is kept nowhere: the queen stores its hash.
 */
export const users = defineCommand({
  name: 'users',
  summary: 'users and their tokens (admin): list, add, rotate, revoke; a new token is printed once',
  usage: USAGE,
  options: {
    role: { type: 'string', multiple: true, value: 'ROLE', help: 'a role of the user to add (repeat, or comma-separate, for several): viewer, operator, admin, or one of the users file' },
  },
  args: 'command',
  async run({ command, values: v, io, client }) {
    const [sub, name, ...more] = command
    const wantsName = sub === 'add' || sub === 'rotate' || sub === 'revoke'
    if (sub === undefined || !['list', 'add', 'rotate', 'revoke'].includes(sub)) {
      throw new ApiaryError('invalid_input', `keeper users: ${sub === undefined ? 'a subcommand is required' : `unknown subcommand "${sub}"`} (usage: ${USAGE})`, 'command')
    }
    if ((wantsName && name === undefined) || (!wantsName && name !== undefined) || more.length > 0) {
      throw new ApiaryError('invalid_input', `keeper users ${sub}: ${wantsName ? 'takes one user name' : 'takes no arguments'} (usage: ${USAGE})`, 'name')
    }
    if (sub !== 'add' && v.role.length > 0) throw new ApiaryError('invalid_input', `--role: only keeper users add takes roles`, '--role')
    if (sub === 'add' && v.role.length === 0) throw new ApiaryError('invalid_input', '--role: a new user needs at least one role (viewer, operator, admin, …)', '--role')
    const roles = v.role.flatMap((r) => r.split(',')).filter(Boolean)
    const c = await client()
    if (sub === 'list') {
      const r = await c.users.list()
      if (await printJson(io, 'users', r.users)) return EXIT.ok
      for (const l of table(['USER', 'ROLES'], r.users.map((u) => [u.name, u.roles.join(', ')]))) await io.out.line(l)
      if (!r.managed) await io.err.line('keeper: this queen has no users file (--users-file): its token is the one user, admin')
      return EXIT.ok
    }
    if (sub === 'revoke') {
      const r = await c.users.revoke(name!)
      if (io.format !== 'text') await io.out.line(JSON.stringify(r))
      else await io.out.line(`user ${r.name} revoked: its token no longer works`)
      return EXIT.ok
    }
    const issued = sub === 'add' ? await c.users.add(name!, roles) : await c.users.rotate(name!)
    if (io.format !== 'text') {
      await io.out.line(JSON.stringify(issued))
      return EXIT.ok
    }
    const what = sub === 'add' ? `user ${issued.name} added (roles ${issued.roles.join(', ')})` : `user ${issued.name} has a new token; the old one no longer works`
    await io.err.line(`${what}. Its token is shown this once, on stdout: keep it in a file of mode 0600 (keeper --token-file).`)
    await io.out.line(issued.token)
    return EXIT.ok
  },
})
