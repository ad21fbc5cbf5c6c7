/**
 * The web console served at `/` by `domicile serve`: one self-contained HTML document (inline CSS
 * and JS, no framework, no external request) over the admin API. It shows the configured regions
 * as a diagram with each tenant inside its home region, the tenants with their key custody and
 * state, an onboarding form, revoke (behind an in-page confirmation) and restore, and the
 * residency report download.
 *
 * It runs under a strict Content-Security-Policy: serve it with `consoleContentSecurityPolicy(nonce)`
 * and the same fresh nonce passed to `consolePage({ nonce })`. Without a nonce the policy falls back
 * to the SHA-256 hashes of the inline script and style (the page is static, so they are fixed).
 *
 * @example
 * const nonce = randomBytes(18).toString('base64')
 * c.header('Content-Security-Policy', consoleContentSecurityPolicy(nonce))
 * return c.html(consolePage({ nonce }))
 */
import { createHash } from 'node:crypto'
import { DomicileError } from '../../errors.js'
import { CONSOLE_SCRIPT } from './console-script.js'
import { CONSOLE_STYLE } from './console-style.js'

/** A CSP nonce: base64 / base64url, at least 128 bits. */
const NONCE = /^[A-Za-z0-9+/_-]{22,}={0,2}$/

function checkNonce(nonce: string): void {
  /* Precondition: the nonce is base64 of at least 16 bytes (it is written into an attribute and a header). */
  if (!NONCE.test(nonce)) {
    throw new DomicileError('ERR_INPUT_INVALID', 'The console CSP nonce must be base64 of at least 16 random bytes (e.g. randomBytes(18).toString("base64")).')
  }
}

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`
}

const SCRIPT_HASH = sha256(CONSOLE_SCRIPT)
const STYLE_HASH = sha256(CONSOLE_STYLE)

/**
 * The Content-Security-Policy header to send with the page: nothing but this origin's API for
 * fetch, the inline script and style by nonce (or by hash without one), no framing, no forms
 * posting elsewhere.
 */
export function consoleContentSecurityPolicy(nonce?: string): string {
  if (nonce !== undefined) checkNonce(nonce)
  const script = nonce !== undefined ? `'nonce-${nonce}'` : SCRIPT_HASH
  const style = nonce !== undefined ? `'nonce-${nonce}'` : STYLE_HASH
  return [
    "default-src 'none'",
    `script-src ${script}`,
    `style-src ${style}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ')
}

const BODY = `
<header class="top">
  <h1>Domicile <span class="sub">console</span></h1>
  <div id="session" class="session" hidden>
    <span>Signed in as admin</span>
    <button id="logout" type="button">Log out</button>
  </div>
</header>
<div id="status" class="status" role="status" aria-live="polite" aria-atomic="true"></div>
<main>
  <section id="login-view" class="card login" aria-labelledby="login-title">
    <h2 id="login-title">Admin sign-in</h2>
    <p class="hint">Paste the admin bearer token (the service's <code>DOMICILE_ADMIN_TOKEN</code>). It stays in this
      tab's session storage only and is sent to this service alone, as an Authorization header.</p>
    <form id="login-form" class="row" autocomplete="off">
      <div class="field">
        <label for="token">Admin token</label>
        <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required>
      </div>
      <button type="submit" class="primary">Sign in</button>
    </form>
  </section>

  <div id="app-view" hidden>
    <section class="card" aria-labelledby="map-title">
      <div class="card-head">
        <h2 id="map-title">Regions</h2>
        <button id="refresh" type="button" class="small">Refresh</button>
      </div>
      <p class="hint">Each box is a configured region with its jurisdiction; each tenant is drawn inside its home
        region, where all of its rows are stored. The dot shows the state of the tenant's key.</p>
      <div id="diagram" class="diagram"></div>
      <div class="legend" aria-hidden="true">
        <span><span class="swatch pin-enabled"></span>key enabled</span>
        <span><span class="swatch pin-revoked"></span>revoked</span>
        <span><span class="swatch pin-pending-import"></span>pending import</span>
        <span><span class="swatch pin-unavailable"></span>unavailable</span>
        <span><span class="swatch pin-destroyed"></span>destroyed</span>
        <span><span class="swatch pin-none"></span>no key</span>
      </div>
    </section>

    <section class="card" aria-labelledby="tenants-title">
      <h2 id="tenants-title">Tenants</h2>
      <p class="hint">Key custody: <b>kms</b> — a key we hold for the tenant; <b>byok</b> — the customer's key material in
        our key service; <b>hyok</b> — the key never leaves the customer's own key service.</p>
      <div class="table-wrap">
        <table id="tenants-table">
          <caption class="sr-only">Tenants, their home region, key custody and key state</caption>
          <thead>
            <tr>
              <th scope="col">Tenant</th><th scope="col">Region</th><th scope="col">Status</th><th scope="col">Custody</th>
              <th scope="col">Provider</th><th scope="col">Key reference</th><th scope="col">Key state</th>
              <th scope="col">Key action</th><th scope="col">Residency report</th>
            </tr>
          </thead>
          <tbody id="tenants-body"></tbody>
        </table>
      </div>
    </section>

    <section class="card onboard" aria-labelledby="onboard-title">
      <h2 id="onboard-title">Onboard a tenant</h2>
      <p class="hint">One step: the tenant is pinned to its region and its key is bound (and, for hyok, a health check and a
        test encrypt/decrypt through the customer's key service run first). A failure leaves nothing behind.</p>
      <form id="onboard-form" class="grid" autocomplete="off">
        <div class="field">
          <label for="ob-id">Tenant id</label>
          <input id="ob-id" name="id" required spellcheck="false" aria-describedby="ob-id-help">
          <span id="ob-id-help" class="help">lower-case letters, digits and dashes</span>
        </div>
        <div class="field">
          <label for="ob-region">Home region</label>
          <select id="ob-region" name="region" required></select>
        </div>
        <div class="field">
          <label for="ob-custody">Key custody</label>
          <select id="ob-custody" name="custody">
            <option value="kms" selected>kms — key held by us</option>
            <option value="byok">byok — customer's key material</option>
            <option value="hyok">hyok — customer's key service (XKS)</option>
            <option value="none">none — no key (no sensitive columns)</option>
          </select>
        </div>
        <div class="field">
          <label for="ob-provider">Provider (optional)</label>
          <input id="ob-provider" name="provider" spellcheck="false" aria-describedby="ob-provider-help">
          <span id="ob-provider-help" class="help">e.g. aws-kms for a byok key in the customer's account</span>
        </div>
        <div class="field">
          <label for="ob-key-id">Key id (optional; required for hyok)</label>
          <input id="ob-key-id" name="keyId" spellcheck="false">
        </div>
        <fieldset id="ob-hyok" hidden disabled>
          <legend>Customer key service (XKS proxy)</legend>
          <div class="grid">
            <div class="field">
              <label for="ob-xks-endpoint">XKS endpoint URL</label>
              <input id="ob-xks-endpoint" name="xksEndpoint" type="url" spellcheck="false" placeholder="https://xks.customer.example">
            </div>
            <div class="field">
              <label for="ob-xks-uri-prefix">URI prefix (optional)</label>
              <input id="ob-xks-uri-prefix" name="xksUriPrefix" spellcheck="false" placeholder="/example/v1">
            </div>
            <div class="field">
              <label for="ob-xks-access-key-id">Access key id</label>
              <input id="ob-xks-access-key-id" name="xksAccessKeyId" spellcheck="false">
            </div>
            <div class="field">
              <label for="ob-xks-secret">Secret access key</label>
              <input id="ob-xks-secret" name="xksSecret" type="password" autocomplete="new-password" spellcheck="false">
            </div>
            <div class="field wide">
              <label for="ob-xks-ca">CA certificate, PEM (optional: for a self-signed or private-CA proxy)</label>
              <textarea id="ob-xks-ca" name="xksCaPem" spellcheck="false" placeholder="-----BEGIN CERTIFICATE-----"></textarea>
            </div>
          </div>
        </fieldset>
        <div class="form-actions">
          <button id="ob-submit" type="submit" class="primary">Onboard tenant</button>
        </div>
      </form>
      <div id="onboard-result" class="next-steps" hidden>
        <h3 id="onboard-result-title">Next steps</h3>
        <ol id="next-steps"></ol>
      </div>
    </section>
  </div>
</main>

<dialog id="confirm-dialog" role="alertdialog" aria-modal="true" aria-labelledby="confirm-title" aria-describedby="confirm-text">
  <form method="dialog">
    <h2 id="confirm-title">Revoke key?</h2>
    <p id="confirm-text"></p>
    <div class="form-actions">
      <button id="confirm-cancel" type="submit" value="cancel">Cancel</button>
      <button id="confirm-ok" type="submit" value="confirm" class="danger solid">Revoke key</button>
    </div>
  </form>
</dialog>
`

/**
 * The console page. With `nonce`, the inline <style> and <script> carry it (send the matching
 * `consoleContentSecurityPolicy(nonce)`); use a fresh random nonce per response.
 */
export function consolePage(opts: { nonce?: string } = {}): string {
  if (opts.nonce !== undefined) checkNonce(opts.nonce)
  const n = opts.nonce !== undefined ? ` nonce="${opts.nonce}"` : ''
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">
<title>Domicile console</title>
<link rel="icon" href="data:,">
<style${n}>${CONSOLE_STYLE}</style>
</head>
<body>${BODY}<script${n}>${CONSOLE_SCRIPT}</script>
</body>
</html>
`
}
