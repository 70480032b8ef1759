// The start of every apiary program (apiary-queen, apiary-hive, apiary-worker, keeper): runs
// the package's bundle, dist/main.mjs, built by `pnpm build` (which `pnpm install` runs), when
// every source it was built from still has the mtime it had when the build read it
// (dist/inputs.json). Plain JavaScript starts faster and holds less memory than a TypeScript
// loader. A bundle that does not match its sources is never run: then the sources run through
// tsx, so an edit is never hidden.
import { readFileSync, statSync } from 'node:fs'

/**
 * @param {string} binUrl import.meta.url of the package's bin script
 * @example await runEntry(import.meta.url)
 */
export async function runEntry(binUrl) {
  const pkg = new URL('..', binUrl)
  const bundle = new URL('dist/main.mjs', pkg)
  if (bundleIsFresh(pkg)) return import(bundle.href)
  const { register } = await import('tsx/esm/api')
  register()
  return import(new URL('src/main.ts', pkg).href)
}

/**
 * True when the package's bundle exists and every source in its dist/inputs.json has the mtime
 * recorded at build time.
 * @param {URL} pkg the package's folder
 */
export function bundleIsFresh(pkg) {
  try {
    statSync(new URL('dist/main.mjs', pkg))
    const { root, inputs } = JSON.parse(readFileSync(new URL('dist/inputs.json', pkg), 'utf8'))
    const base = new URL(root, pkg)
    const files = Object.entries(inputs)
    return files.length > 0 && files.every(([file, mtimeMs]) => statSync(new URL(file, base)).mtimeMs === mtimeMs)
  } catch {
    // No bundle yet, or a source it was built from is gone: run the sources.
    return false
  }
}
