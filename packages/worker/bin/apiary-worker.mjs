#!/usr/bin/env node
// Runs this package's bundle (dist/main.mjs), or its sources when the bundle is stale.
import { runEntry } from '@apiary/shared/entry'

await runEntry(import.meta.url)
