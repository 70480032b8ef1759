import { defineCommand } from '../cli/command.ts'
import { EXIT } from '../cli/context.ts'
import { table } from '../render/output.ts'
import { printJson } from '../render/records.ts'
import { BUS_DIR_OPTIONS, busDirOf } from './bus-options.ts'

export const busList = defineCommand({
  name: 'bus list',
  summary: 'the credentials issued from the bus authority, active and revoked',
  usage: 'keeper bus list [--dir DIR] [-o FORMAT]',
  options: { ...BUS_DIR_OPTIONS },
  args: 'none',
  async run({ values: v, globals, io }) {
    const { listCredentials } = await import('../bus/store.ts')
    const entries = await listCredentials(busDirOf(v, globals, io.env))
    if (await printJson(io, 'identities', entries)) return EXIT.ok
    if (entries.length === 0) {
      await io.out.line('no credentials issued yet (keeper bus issue --help)')
      return EXIT.ok
    }
    const rows = entries.map((e) => [e.role, e.region ?? '', e.id, e.revokedAt === null ? 'active' : 'revoked', e.issuedAt, e.revokedAt ?? '', e.publicKey])
    for (const l of table(['ROLE', 'REGION', 'ID', 'STATUS', 'ISSUED', 'REVOKED', 'USER'], rows)) await io.out.line(l)
    return EXIT.ok
  },
})
