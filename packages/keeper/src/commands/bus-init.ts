import { join } from 'node:path'
import { BUS_FILES } from '../bus/layout.ts'
import { defineCommand } from '../cli/command.ts'
import { EXIT } from '../cli/context.ts'
import { BUS_DIR_OPTIONS, busDirOf } from './bus-options.ts'

export const busInit = defineCommand({
  name: 'bus init',
  summary: "create the bus authority: operator, apiary account, system account and keeper's user of it, nats-server config",
  usage: 'keeper bus init [--dir DIR] [--force]',
  options: {
    ...BUS_DIR_OPTIONS,
    force: { type: 'boolean', help: 'replace an existing authority: every credential issued from it stops working' },
  },
  args: 'none',
  async run({ values: v, globals, io }) {
    const dir = busDirOf(v, globals, io.env)
    const { initBus } = await import('../bus/store.ts')
    const r = await initBus(dir, { force: v.force })
    if (io.format !== 'text') {
      await io.out.line(JSON.stringify(r))
      return EXIT.ok
    }
    const f = (name: string) => join(dir, name)
    await io.out.line(`bus authority created in ${dir} (directory 0700, files 0600; the .nk files are secrets)`)
    if (r.replaced > 0) await io.out.line(`  replaced the previous one: its ${r.replaced} active credential(s) no longer connect; removed ${f(BUS_FILES.creds)}`)
    await io.out.line(`  operator        ${r.operator}  ${BUS_FILES.operatorSeed}, ${BUS_FILES.operatorJwt}`)
    await io.out.line(`  account APIARY  ${r.account}  ${BUS_FILES.accountSeed}, ${BUS_FILES.accountJwt}`)
    await io.out.line(`  signing key     ${r.signingKey}  ${BUS_FILES.signingSeed} (signs every user)`)
    await io.out.line(`  system account  ${r.systemAccount}  ${BUS_FILES.systemSeed}, ${BUS_FILES.systemJwt}`)
    await io.out.line(`  system user     ${r.systemCreds} (keeper's: pushes a revocation to the running nats-server)`)
    const store = r.config.jetstream ? `, JetStream in ${r.config.jetstream.storeDir}` : ''
    await io.out.line(`  server config   ${r.config.path} (listens on ${r.config.host}:${r.config.port}${store}; keeper bus server-config changes it, or makes a cluster)`)
    await io.out.line(`  registry        ${f(BUS_FILES.registry)}`)
    const d = v.dir === undefined ? '' : ` --dir ${dir}`
    await io.out.line('next:')
    await io.out.line(`  nats-server -c ${r.config.path}`)
    await io.out.line(`  keeper bus issue${d} --role queen`)
    await io.out.line(`  keeper bus issue${d} --role hive --region R --id ID`)
    await io.out.line(`  keeper bus issue${d} --role worker --region R --node-id NODE      one per node`)
    await io.out.line(`  keeper bus issue${d} --role ssh-worker --region R --id ID`)
    return EXIT.ok
  },
})
