#!/usr/bin/env node
// Regenerates the README screenshots from a live system:
//   docs/console.png  the web console (`domicile serve`) over the demo's tenants
//   docs/report.png   the HTML residency report (`domicile report TENANT --format html`)
// Steps: `domicile demo --keep` (fresh temp project with the demo tenants and rows), one BYOK tenant
// onboarded through the admin API (pending import) and one key revoked so every badge shows, the
// console signed in and captured in headless Chromium (Debian's /usr/bin/chromium via
// playwright-core; no browser download), then the server stopped and the report rendered by the CLI
// and captured. The temp project is removed at the end.
// Usage: node scripts/screenshots.mjs [--chromium PATH]
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { chromium } from 'playwright-core'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const BIN = join(ROOT, 'bin', 'domicile.mjs')
const DOCS = join(ROOT, 'docs')
const argChromium = process.argv.indexOf('--chromium')
const CHROMIUM = argChromium > 0 ? process.argv[argChromium + 1] : '/usr/bin/chromium'
const REPORT_TENANT = 'acme-eu'

function env(extra = {}) {
  const e = { ...process.env, ...extra }
  delete e.DOMICILE_CONFIG
  return e
}

function cli(args, cwd) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env: env(), encoding: 'utf8', timeout: 300_000 })
  if (r.status !== 0) throw new Error(`domicile ${args.join(' ')} exited ${r.status}\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

/** Starts `domicile serve --json` on a free port; resolves with its URL once it listens. */
function serve(cwd, token) {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--host', '127.0.0.1', '--json'], { cwd, env: env({ DOMICILE_ADMIN_TOKEN: token }), stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`domicile serve did not start:\n${out}`)) }, 60_000)
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d
      const m = /https?:\/\/[^\s"',]+/.exec(out)
      if (m) { clearTimeout(timer); resolvePromise({ url: new URL(m[0]).origin, child }) }
    })
    child.stderr.setEncoding('utf8').on('data', (d) => { out += d })
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`domicile serve exited ${code}:\n${out}`)) })
  })
}

function stop(child) {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolvePromise) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    child.once('exit', (code) => { clearTimeout(timer); resolvePromise(code) })
    child.kill('SIGTERM')
  })
}

async function admin(base, token, method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  })
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`)
  return res.json()
}

if (!existsSync(CHROMIUM)) {
  console.error(`Chromium not found at ${CHROMIUM} (install the Debian package "chromium", or pass --chromium PATH)`)
  process.exit(1)
}

const demo = JSON.parse(cli(['demo', '--keep', '--json'], ROOT))
const dir = demo.dir
if (!dir || !existsSync(dir)) throw new Error('domicile demo --keep --json did not report its directory')
console.log(`demo project: ${dir}`)
const token = randomBytes(24).toString('base64url')
let server
let browser
let reportNote = 'docs/report.png written'
try {
  await mkdir(DOCS, { recursive: true })
  server = await serve(dir, token)
  // A tenant whose key material the customer still has to import, and one revoked key.
  await admin(server.url, token, 'POST', '/admin/api/tenants', { id: 'umbrella-eu', region: 'eu-west-1', custody: 'byok' })
  await admin(server.url, token, 'POST', '/admin/api/tenants/initech-us/revoke')

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  await page.goto(server.url + '/')
  await page.getByLabel('Admin token').fill(token)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.locator('#tenants-body tr[data-tenant="umbrella-eu"]').waitFor()
  await page.screenshot({ path: join(DOCS, 'console.png'), fullPage: true })
  console.log('wrote docs/console.png')
  await page.close()

  await stop(server.child) // the embedded stores have one owner process at a time
  server = undefined
  const htmlFile = join(dir, `report-${REPORT_TENANT}.html`)
  try {
    cli(['report', REPORT_TENANT, '--format', 'html', '--out', htmlFile], dir)
  } catch (e) {
    reportNote = `docs/report.png NOT written: ${e.message.split('\n')[0]}`
  }
  if (existsSync(htmlFile)) {
    const rp = await browser.newPage({ viewport: { width: 1100, height: 900 } })
    await rp.goto(pathToFileURL(htmlFile).href)
    // The top of the report (summary and diagram); the full document is several screens long.
    const height = Math.min(1500, await rp.evaluate('document.documentElement.scrollHeight'))
    await rp.screenshot({ path: join(DOCS, 'report.png'), fullPage: true, clip: { x: 0, y: 0, width: 1100, height } })
    await rp.close()
    console.log('wrote docs/report.png')
  } else console.error(reportNote)
} finally {
  await browser?.close()
  if (server) await stop(server.child)
  await rm(dir, { recursive: true, force: true })
}
