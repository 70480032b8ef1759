import { execFile } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT, TestCluster, waitUntil } from '../harness/index.ts'

const NODES = ['local-1', 'local-2', 'local-3']
const SHOTS = join(ROOT, 'test-artifacts', 'console')
const STATE_FILL = ['ok', 'failed', 'error', 'timeout', 'lost', 'cancelled', 'skipped', 'running', 'pending'] as const

/**
 * The web console in a real browser (Debian's chromium, driven by playwright-core; nothing is
 * downloaded) against a real queen of the embedded cluster over HTTP: sign-in, a command run
 * from the Run page and watched to the end on the grid, a node's output, a cancel, a
 * destructive plan's confirmation, and the session cookie refused across origins.
 */
describe('web console in chromium', () => {
  let cluster: TestCluster
  let browser: Browser
  let context: BrowserContext
  let page: Page
  let base = ''

  beforeAll(async () => {
    // The console's assets, as `pnpm build` makes them (the console alone: other tests run programs' bundles).
    await promisify(execFile)(process.execPath, [join(ROOT, 'scripts', 'build.mjs'), 'console'], { cwd: ROOT })
    await mkdir(SHOTS, { recursive: true })
    cluster = await TestCluster.start('memory')
    await cluster.addHive('default')
    for (const n of NODES) await cluster.addWorker(n)
    base = cluster.queen.url
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    })
    context = await browser.newContext({ colorScheme: 'light', viewport: { width: 1280, height: 900 } })
    page = await context.newPage()
    page.setDefaultTimeout(10_000)
  })
  afterAll(async () => {
    await browser?.close()
    await cluster?.stop()
  })

  /** Which state each grid cell is painted in, read back from the canvas's pixels. */
  const paintedStates = (): Promise<string[]> =>
    page.locator('canvas.grid').evaluate(
      (el, { states, n }) => {
        // What of the canvas this reads (the test's types have no DOM).
        const cv = el as unknown as {
          width: number
          clientWidth: number
          getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } }
          ownerDocument: { defaultView: { getComputedStyle(e: unknown): { getPropertyValue(name: string): string } } }
        }
        const ctx = cv.getContext('2d')
        const css = cv.ownerDocument.defaultView.getComputedStyle(cv)
        const rgb = (hex: string) => [1, 3, 5].map((k) => parseInt(hex.trim().slice(k, k + 2), 16))
        const fills = states.map((s) => [s, rgb(css.getPropertyValue(`--state-${s}`))] as const)
        const dpr = cv.width / cv.clientWidth
        const pitch = 16 // three nodes: the largest cells
        const out: string[] = []
        for (let i = 0; i < n; i++) {
          // The fill most of the cell's pixels have: the marks some states carry are thin lines.
          const side = Math.floor((pitch - 1) * dpr)
          const px = ctx.getImageData(Math.floor(i * pitch * dpr), 0, side, side).data
          const votes = new Map<string, number>()
          for (let k = 0; k < px.length; k += 4) {
            const hit = fills.find(([, c]) => c.every((v, j) => Math.abs(v - px[k + j]!) <= 2))
            if (hit) votes.set(hit[0], (votes.get(hit[0]) ?? 0) + 1)
          }
          const best = [...votes].sort((a, b) => b[1] - a[1])[0]
          out.push(best && best[1] > px.length / 4 / 5 ? best[0] : 'unpainted')
        }
        return out
      },
      { states: [...STATE_FILL], n: NODES.length },
    )

  it('refuses a wrong token on the sign-in page with a clear message', async () => {
    await page.goto(`${base}/ui/`)
    await page.fill('#token', 'not-the-token')
    await page.click('button[type=submit]')
    await expect.poll(() => page.textContent('[data-testid=sign-in-error]')).toContain('That token is not valid')
    expect(await context.cookies()).toEqual([])
    await page.screenshot({ path: join(SHOTS, 'sign-in.png') })
  })

  it('signs in with the token: a session cookie the page cannot read, not the token', async () => {
    await page.fill('#token', cluster.queen.token)
    await page.click('button[type=submit]')
    await page.waitForSelector('h1#jobs-title')
    const [cookie] = await context.cookies()
    expect(cookie).toMatchObject({ name: 'apiary_session', httpOnly: true, sameSite: 'Strict', path: '/', secure: false })
    expect(cookie!.value).not.toContain(cluster.queen.token)
    expect(await page.evaluate('document.cookie')).toBe('')
  })

  it('runs a command from the Run page and watches it finish: every cell ok, the counts right', async () => {
    await page.click('nav a[href="#/run"]')
    // Markup in the output must come out as text, never as elements.
    await page.fill('#command', "echo '<b id=injected>hi</b>'")
    await page.fill('#targets', 'local-*')
    await expect.poll(() => page.textContent('[data-testid=plan-nodes]')).toBe('3')
    expect(await page.textContent('[data-testid=plan-risk]')).toBe('safe')
    await page.screenshot({ path: join(SHOTS, 'run.png') })
    await page.click('form.run button[type=submit]')
    await page.waitForSelector('[data-testid=node-grid]')
    await expect.poll(() => page.textContent('[data-testid=job-state]'), { timeout: 20_000 }).toBe('ok')
    expect(await page.textContent('[data-testid=done]')).toBe('3 / 3')
    expect(await page.textContent('[data-testid=ok]')).toBe('3')
    expect(await page.textContent('[data-testid=not-ok]')).toBe('0')
    await expect.poll(paintedStates).toEqual(['ok', 'ok', 'ok'])
    await expect.poll(() => page.textContent('[data-testid=groups-summary]')).toBe('all 3 identical')
    await page.screenshot({ path: join(SHOTS, 'job.png'), fullPage: true })
  })

  it("shows a cell's node on hover and opens its output on click, as text", async () => {
    const grid = page.locator('[data-testid=node-grid]')
    await grid.hover({ position: { x: 16 + 8, y: 8 } })
    await expect.poll(() => page.textContent('[data-testid=cell-tip]')).toMatch(/^local-2✓ okexit 0/)
    await grid.click({ position: { x: 8, y: 8 } })
    await expect.poll(() => page.textContent('[data-testid=node-output-text]')).toBe('<b id=injected>hi</b>\n')
    expect(await page.locator('#injected').count()).toBe(0)
    expect(await page.textContent('#node-title')).toBe('Output of local-1')
    // The keyboard reaches every cell too: the third one, then Enter.
    await grid.focus()
    await page.keyboard.press('ArrowRight')
    await page.keyboard.press('ArrowRight')
    await page.keyboard.press('Enter')
    await expect.poll(() => page.textContent('#node-title')).toBe('Output of local-3')
    await page.screenshot({ path: join(SHOTS, 'node-output.png'), fullPage: true })
  })

  it('shows an outlier group’s output as a diff against the most common result', async () => {
    const command = 'echo version 1.24; echo ok; [ "$APIARY_NODE_ID" = local-2 ] && echo warning: old || true'
    const { jobId } = await cluster.client.submit({ operation: { type: 'exec', shell: true, command }, targets: 'local-*' })
    await page.goto(`${base}/ui/#/jobs/${jobId}`)
    await expect.poll(() => page.textContent('[data-testid=groups-summary]')).toBe('2 identical, 1 differ (1 other result)')
    await expect.poll(() => page.textContent('[data-testid=group-diff]')).toBe('  version 1.24\n  ok\n+ warning: old\n')
    await page.screenshot({ path: join(SHOTS, 'job-diff.png'), fullPage: true })
  })

  it('cancels a running job after asking, and every node ends cancelled', async () => {
    const { jobId } = await cluster.client.submit({ operation: { type: 'exec', argv: ['sleep', '30'] }, targets: 'local-*' })
    await page.goto(`${base}/ui/#/jobs/${jobId}`)
    await expect.poll(() => page.textContent('[data-testid=running]'), { timeout: 10_000 }).toBe('3')
    await expect.poll(paintedStates).toEqual(['running', 'running', 'running'])
    await page.click('text=Cancel job…')
    await page.click('text=Yes, cancel the job')
    await expect.poll(() => page.textContent('[data-testid=job-state]'), { timeout: 20_000 }).toBe('cancelled')
    expect(await page.textContent('[data-testid=legend-cancelled]')).toContain('3')
    await expect.poll(paintedStates).toEqual(['cancelled', 'cancelled', 'cancelled'])
    expect((await cluster.client.get(jobId)).counts).toEqual({ cancelled: 3 })
  })

  it('asks for the node count before a destructive command, and runs nothing on the plan', async () => {
    const before = (await cluster.client.list()).length
    await page.click('nav a[href="#/run"]')
    await page.fill('#command', 'shutdown -r now')
    await page.fill('#targets', 'all')
    await expect.poll(() => page.textContent('[data-testid=plan-risk]')).toContain('destructive')
    const run = page.locator('[data-testid=confirm-count] button[type=submit]')
    expect(await run.isDisabled()).toBe(true)
    await page.fill('[data-testid=confirm-input]', '2')
    expect(await run.isDisabled()).toBe(true)
    await page.fill('[data-testid=confirm-input]', '3')
    expect(await run.isDisabled()).toBe(false)
    await page.screenshot({ path: join(SHOTS, 'run-destructive.png') })
    expect((await cluster.client.list()).length).toBe(before)
  })

  it('lists the nodes, filtered by a selector', async () => {
    await page.click('nav a[href="#/nodes"]')
    await expect.poll(() => page.locator('[data-testid=node-row]').count()).toBe(3)
    await page.fill('[data-testid=nodes-filter]', 'local-2|local-3')
    await expect.poll(() => page.locator('[data-testid=node-row]').count()).toBe(2)
    expect(await page.textContent('[data-testid=nodes-count]')).toBe('2 nodes, 2 online')
    await page.screenshot({ path: join(SHOTS, 'nodes.png') })
  })

  it('shows the API reference from the OpenAPI document: every route, who may call it, and its schemas', async () => {
    await page.click('nav a[href="#/api"]')
    const doc = (await (await fetch(`${base}/v1/openapi.json`, { headers: { authorization: `Bearer ${cluster.queen.token}` } })).json()) as { paths: Record<string, object> }
    const routes = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0)
    await expect.poll(() => page.locator('table.api tbody tr').count()).toBe(routes)
    expect(await page.textContent('table.api')).toContain('POST /v1/jobs')
    await page.click('table.api button:text-is("JobRequest")')
    expect(await page.textContent('[role=dialog] pre')).toContain('"operation"')
    await page.screenshot({ path: join(SHOTS, 'api.png'), fullPage: true })
  })

  it('refuses the session cookie on a state-changing request from another origin', async () => {
    const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
    const plan = (origin?: string) =>
      fetch(`${base}/v1/plan`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json', ...(origin ? { origin } : {}) },
        body: JSON.stringify({ operation: { type: 'ping' }, targets: 'all' }),
      })
    const foreign = await plan('http://evil.example')
    expect(foreign.status).toBe(403)
    expect(((await foreign.json()) as { error: { code: string } }).error.code).toBe('forbidden')
    expect((await plan()).status).toBe(403)
    expect((await plan(base)).status).toBe(200)
  })

  it('signs out: the cookie no longer opens anything', async () => {
    const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
    await page.click('text=Sign out')
    await page.waitForSelector('#token')
    await waitUntil(async () => (await fetch(`${base}/v1/jobs`, { headers: { cookie } })).status === 401, 'the session to end')
  })
})
