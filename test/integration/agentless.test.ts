import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { silentLogger } from '@apiary/shared/runtime'
import { createMemoryBus } from '@apiary/shared/memory-bus'
import { startQueen } from '@apiary/queen'
import { tempDir, testSigner } from '../harness/index.ts'
import { defineAgentlessSuite } from './agentless-suite.ts'

defineAgentlessSuite('memory')
defineAgentlessSuite('nats')

describe('a queen given a bad inventory', () => {
  it('does not start, and names the file, the entry and the field', async () => {
    const dir = await tempDir('bad-inv')
    const file = join(dir.path, 'inv.yaml')
    await writeFile(file, 'groups:\n  web:\n    hosts: [ "web[9-1]" ]\n')
    const bus = createMemoryBus(silentLogger())
    await expect(
      startQueen({ bus, log: silentLogger(), stateDir: dir.path, host: '127.0.0.1', port: 0, tokenFile: join(dir.path, 'token'), inventoryFile: file, signer: testSigner }),
    ).rejects.toMatchObject({ code: 'invalid_input', message: expect.stringMatching(/inv\.yaml:3:\d+: groups\.web\.hosts\[0\]: "web\[9-1\]": range start 9 is greater than end 1/) })
    await bus.close()
    await dir.remove()
  })
})
