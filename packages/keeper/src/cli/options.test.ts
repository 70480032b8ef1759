import { describe, expect, it } from 'vitest'
import { MAX_QUEENS } from '@apiary/shared/client'
import { GLOBAL_OPTIONS } from './options.ts'

describe('keeper global options', () => {
  it('says in --queen’s help how many queens it takes', () => {
    // Written out there: the client is not loaded when help is shown.
    expect(GLOBAL_OPTIONS.queen.help).toContain(`at most ${MAX_QUEENS})`)
  })
})
