#!/usr/bin/env node
// Bundles each program — apiary-queen, apiary-hive, apiary-worker, keeper — into
// packages/<pkg>/dist/main.mjs: plain JavaScript, so no TypeScript loader runs in production
// (less memory, faster start; the worker runs on every node of a fleet). Workspace code is
// bundled, third-party packages stay external (each package declares what it loads).
// Dynamic imports become chunks loaded on demand: keeper's embedded cluster (keeper dev), the
// worker's SSH mode. dist/inputs.json lists the sources of each bundle, so the bin scripts
// (packages/shared/entry/run.mjs) can tell a stale bundle from a fresh one: each source's
// mtime must be the one it had when the build read it.
// The web console (packages/console) is bundled for the browser into packages/console/dist/:
// content-hashed assets and the index.html that names them, which the queen serves under /ui.
// `node scripts/build.mjs console` builds the console alone.
import { build } from 'esbuild'
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const pkgJson = (pkg) => JSON.parse(readFileSync(`${root}packages/${pkg}/package.json`, 'utf8'))
const PROGRAMS = ['queen', 'hive', 'worker', 'keeper']
const thirdParty = new Set()
for (const pkg of [...PROGRAMS, 'shared']) for (const d of Object.keys(pkgJson(pkg).dependencies ?? {})) if (!d.startsWith('@apiary/')) thirdParty.add(d)
const external = [...thirdParty].flatMap((d) => [d, `${d}/*`])
const only = process.argv[2]
if (only !== undefined && only !== 'console') throw new Error(`usage: build.mjs [console] (not ${only})`)

/**
 * The console: one minified ES module and one stylesheet, each named by its content's hash so
 * the queen can serve them `immutable`; index.html (served `no-cache`) is the one file that
 * changes name-free. No inline script or style: the queen's CSP allows only 'self'. Built with
 * platform browser, so a `node:` import anywhere in its graph fails the build.
 */
async function buildConsole() {
  const dir = `${root}packages/console`
  const outdir = `${dir}/dist`
  rmSync(outdir, { recursive: true, force: true })
  const result = await build({
    entryPoints: { main: `${dir}/src/main.tsx` },
    outdir: `${outdir}/assets`,
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    chunkNames: 'chunk-[hash]',
    bundle: true,
    // What only one page needs (the selector parser and zod, for Nodes) loads with that page.
    splitting: true,
    minify: true,
    platform: 'browser',
    format: 'esm',
    target: ['chrome111', 'firefox115', 'safari16.4'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    sourcemap: 'linked',
    metafile: true,
    absWorkingDir: root,
    logLevel: 'warning',
    legalComments: 'none',
  })
  const [entry, out] = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint !== undefined) ?? []
  if (!entry || !out.cssBundle) throw new Error(`packages/console: the build made no ${entry ? 'stylesheet' : 'script'}`)
  const script = relative(`${outdir}/assets`, `${root}${entry}`)
  const style = relative(`${outdir}/assets`, `${root}${out.cssBundle}`)
  const template = readFileSync(`${dir}/index.html`, 'utf8')
  const html = template.replace('%STYLE%', `/ui/assets/${style}`).replace('%SCRIPT%', `/ui/assets/${script}`)
  writeFileSync(`${outdir}/index.html`, html)
}

await Promise.all([
  buildConsole(),
  ...(only === 'console' ? [] : PROGRAMS).map(async (pkg) => {
    const outdir = `${root}packages/${pkg}/dist`
    rmSync(outdir, { recursive: true, force: true })
    // Each workspace source's mtime as it was when esbuild read it: a file saved during the
    // build then differs from its record, and the bundle counts as stale.
    const seen = {}
    const record = {
      name: 'record-inputs',
      setup(b) {
        b.onLoad({ filter: /\.ts$/ }, async (args) => {
          if (args.path.includes('/node_modules/')) return undefined
          const before = statSync(args.path).mtimeMs
          const contents = await readFile(args.path, 'utf8')
          seen[relative(root, args.path)] = before
          return { contents, loader: 'ts' }
        })
      },
    }
    const result = await build({
      entryPoints: { main: `${root}packages/${pkg}/src/main.ts` },
      outdir,
      outExtension: { '.js': '.mjs' },
      chunkNames: 'chunk-[hash]',
      bundle: true,
      splitting: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external,
      sourcemap: 'linked',
      metafile: true,
      absWorkingDir: root,
      logLevel: 'warning',
      banner: { js: `// Built by scripts/build.mjs from packages/${pkg}/src; do not edit.` },
      plugins: [record],
    })
    // A bundle may only load what its package declares: pnpm gives it nothing else at run time.
    const declared = new Set(Object.keys(pkgJson(pkg).dependencies ?? {}))
    const missing = new Set()
    for (const out of Object.values(result.metafile.outputs)) {
      for (const imp of out.imports) {
        if (!imp.external || imp.path.startsWith('node:')) continue
        const name = imp.path.startsWith('@') ? imp.path.split('/').slice(0, 2).join('/') : imp.path.split('/')[0]
        if (!declared.has(name)) missing.add(name)
      }
    }
    if (missing.size > 0) throw new Error(`packages/${pkg}: the bundle loads ${[...missing].join(', ')}, which packages/${pkg}/package.json does not declare`)
    // Written last: without it the bundle is never run.
    writeFileSync(`${outdir}/inputs.json`, JSON.stringify({ root: '../../', inputs: seen }, null, 1))
  }),
])
