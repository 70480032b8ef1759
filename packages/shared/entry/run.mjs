// The start of every apiary program (apiary-queen, apiary-hive, apiary-worker, keeper): runs
// the package's bundle, dist/main.mjs, built by `pnpm build` (which `pnpm install` runs), when
// it is at least as new as every source it was built from (dist/inputs.json lists them). Plain
// JavaScript starts faster and holds less memory than a TypeScript loader. A bundle older than
// a source is never run: then the sources run through tsx, so an edit is never hidden.
import { readFileSync, statSync } from 'node:fs'

/**
 * @param {string} binUrl import.meta.url of the package's bin script
 * @example await runEntry(import.meta.url)
 */
export async function runEntry(binUrl) {
  const pkg = new URL('..', binUrl)
  const bundle = new URL('dist/main.mjs', pkg)
  if (fresh(pkg, bundle)) return import(bundle.href)
  const { register } = await import('tsx/esm/api')
  register()
  return import(new URL('src/main.ts', pkg).href)
}

function fresh(pkg, bundle) {
  try {
    const built = statSync(bundle).mtimeMs
    const { root, inputs } = JSON.parse(readFileSync(new URL('dist/inputs.json', pkg), 'utf8'))
    const base = new URL(root, pkg)
    return inputs.every((file) => statSync(new URL(file, base)).mtimeMs <= built)
  } catch {
    // No bundle yet, or a source it was built from is gone: run the sources.
    return false
  }
}
