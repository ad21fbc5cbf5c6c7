/**
 * The web console's client script (plain ES2020, no framework), inlined into the page by
 * console-page.ts under the CSP nonce. It talks only to this origin's admin API
 * (/admin/api/...), with the bearer token the operator pastes in, kept in sessionStorage.
 *
 * Every value from the API is customer-controlled as far as the page is concerned (tenant ids,
 * key references, error messages): it is placed with textContent / createElement /
 * setAttribute on fixed attribute names only, never parsed as HTML.
 */

export const CONSOLE_SCRIPT = String.raw`
(function () {
  'use strict';
  var TOKEN_KEY = 'domicile.console.adminToken';
  var SVGNS = 'http://www.w3.org/2000/svg';
  var KNOWN_STATES = ['enabled', 'revoked', 'pending-import', 'destroyed', 'unavailable', 'none'];
  var REPORT_FORMATS = [
    { format: 'json', label: 'JSON', ext: 'json' },
    { format: 'md', label: 'Markdown', ext: 'md' },
    { format: 'html', label: 'HTML', ext: 'html' }
  ];

  var token = null;
  var regions = [];
  var tenants = [];
  var pendingRevoke = null;
  var lastTrigger = null;

  function byId(id) { return document.getElementById(id); }
  var ui = {
    status: byId('status'),
    session: byId('session'),
    logout: byId('logout'),
    loginView: byId('login-view'),
    loginForm: byId('login-form'),
    token: byId('token'),
    appView: byId('app-view'),
    diagram: byId('diagram'),
    tbody: byId('tenants-body'),
    refresh: byId('refresh'),
    onboardForm: byId('onboard-form'),
    region: byId('ob-region'),
    custody: byId('ob-custody'),
    provider: byId('ob-provider'),
    keyId: byId('ob-key-id'),
    hyok: byId('ob-hyok'),
    obResult: byId('onboard-result'),
    obResultTitle: byId('onboard-result-title'),
    nextSteps: byId('next-steps'),
    dialog: byId('confirm-dialog'),
    dialogTitle: byId('confirm-title'),
    dialogText: byId('confirm-text'),
    dialogOk: byId('confirm-ok'),
    dialogCancel: byId('confirm-cancel')
  };

  /* Builds an element; 'text' sets textContent, 'class' the class list; other keys are fixed attribute names. */
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    setAttrs(e, attrs);
    (children || []).forEach(function (c) { e.append(c); });
    return e;
  }
  function svgEl(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    setAttrs(e, attrs);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function setAttrs(e, attrs) {
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === undefined || v === null || v === false) return;
      if (k === 'text') e.textContent = String(v);
      else if (k === 'class') e.setAttribute('class', String(v));
      else e.setAttribute(k, v === true ? '' : String(v));
    });
  }
  function stateClass(state) { return KNOWN_STATES.indexOf(state) >= 0 ? state : 'other'; }
  function clip(s, n) { s = String(s); return s.length > n ? s.slice(0, n - 1) + '\u2026' : s; }

  /* ---- status area (aria-live) ---- */
  function showInfo(text) {
    ui.status.className = 'status info';
    ui.status.replaceChildren(el('div', { class: 'msg', text: text }));
  }
  function showError(err) {
    var msg = el('div', { class: 'msg' });
    if (err && err.code) msg.append(el('span', { class: 'code', text: err.code }), document.createTextNode(' '));
    msg.append(document.createTextNode((err && err.message) ? String(err.message) : 'Something went wrong.'));
    ui.status.className = 'status error';
    ui.status.replaceChildren(msg);
  }
  function clearStatus() { ui.status.className = 'status'; ui.status.replaceChildren(); }

  /* ---- admin API ---- */
  function ApiError(code, message, status) {
    var e = new Error(message);
    e.code = code;
    e.status = status;
    return e;
  }
  async function errorFrom(res) {
    var code = null;
    var message = 'The service answered ' + res.status + '.';
    try {
      var body = await res.json();
      if (body && body.error) {
        if (typeof body.error.code === 'string') code = body.error.code;
        if (typeof body.error.message === 'string') message = body.error.message;
      }
    } catch (_) { /* not JSON: keep the generic message */ }
    return ApiError(code, message, res.status);
  }
  async function api(method, path, body) {
    if (!token) throw ApiError(null, 'Sign in with the admin token first.', 401);
    var headers = { 'Accept': 'application/json', 'Authorization': 'Bearer ' + token };
    var init = { method: method, headers: headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error' };
    if (body !== undefined) { headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    var res;
    try { res = await fetch(path, init); }
    catch (_) { throw ApiError(null, 'The service did not answer. Check that "domicile serve" is running, then retry.', 0); }
    if (!res.ok) {
      var err = await errorFrom(res);
      if (res.status === 401 && token) signOut(true);
      throw err;
    }
    return res;
  }
  async function apiJson(method, path, body) { return (await api(method, path, body)).json(); }
  function tenantPath(id, rest) { return '/admin/api/tenants/' + encodeURIComponent(id) + (rest || ''); }

  /* ---- session ---- */
  function showApp(on) {
    ui.loginView.hidden = on;
    ui.appView.hidden = !on;
    ui.session.hidden = !on;
  }
  function signOut(expired) {
    token = null;
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (_) { /* storage disabled */ }
    regions = []; tenants = [];
    ui.tbody.replaceChildren();
    ui.diagram.replaceChildren();
    ui.region.replaceChildren();
    ui.obResult.hidden = true;
    ui.nextSteps.replaceChildren();
    showApp(false);
    if (!expired) showInfo('Signed out. The token was removed from this tab.');
    ui.token.focus();
  }
  async function signIn(candidate) {
    token = candidate;
    try {
      await loadAll();
    } catch (e) {
      token = null;
      try { sessionStorage.removeItem(TOKEN_KEY); } catch (_) { /* storage disabled */ }
      showApp(false);
      showError(e);
      return false;
    }
    try { sessionStorage.setItem(TOKEN_KEY, candidate); } catch (_) { /* storage disabled: token lives in memory only */ }
    ui.token.value = '';
    showApp(true);
    return true;
  }

  async function loadAll() {
    var both = await Promise.all([apiJson('GET', '/admin/api/regions'), apiJson('GET', '/admin/api/tenants')]);
    regions = Array.isArray(both[0].regions) ? both[0].regions : [];
    tenants = Array.isArray(both[1].tenants) ? both[1].tenants : [];
    renderRegionSelect();
    render();
  }
  async function reloadTenants() {
    var body = await apiJson('GET', '/admin/api/tenants');
    tenants = Array.isArray(body.tenants) ? body.tenants : [];
    render();
  }
  function render() { renderDiagram(); renderTable(); }

  /* ---- region diagram (inline SVG) ---- */
  function renderDiagram() {
    // One box per store: a region, or each cell of a region with several ("eu-west-1/b").
    var names = regions.map(function (r) { return r.name; });
    var storeOf = function (t) {
      var s = regions.find(function (r) { return (r.region || r.name) === t.region && (r.cell === undefined || r.cell === t.cell); });
      return s ? s.name : t.region;
    };
    tenants.forEach(function (t) { if (names.indexOf(storeOf(t)) < 0) names.push(storeOf(t)); });
    var info = {};
    regions.forEach(function (r) { info[r.name] = r; });
    var byRegion = {};
    names.forEach(function (n) { byRegion[n] = []; });
    tenants.forEach(function (t) { byRegion[storeOf(t)].push(t); });

    var BOX_W = 280, GAP = 28, HEAD = 54, PILL_H = 40, PILL_GAP = 8, PAD = 14;
    var maxCount = names.reduce(function (m, n) { return Math.max(m, byRegion[n].length); }, 1);
    var boxH = HEAD + 30 + maxCount * (PILL_H + PILL_GAP) + PAD;
    var width = Math.max(1, names.length) * (BOX_W + GAP) + GAP;
    var height = boxH + 2 * GAP;

    var svg = svgEl('svg', { viewBox: '0 0 ' + width + ' ' + height, width: width, height: height, role: 'img', 'aria-labelledby': 'diagram-title diagram-desc', class: 'map' });
    svg.append(svgEl('title', { id: 'diagram-title' }, 'Regions and their tenants'));
    var desc = names.map(function (n) {
      var j = info[n] && info[n].jurisdiction ? ' (' + info[n].jurisdiction + ')' : '';
      var ids = byRegion[n].map(function (t) { return t.id + ' [' + (t.keyState || 'none') + ']'; });
      return n + j + ': ' + (ids.length ? ids.join(', ') : 'no tenants');
    }).join('. ');
    svg.append(svgEl('desc', { id: 'diagram-desc' }, desc || 'No regions configured.'));

    names.forEach(function (n, i) {
      var r = info[n] || { name: n, driver: '?', reachable: false };
      var x = GAP + i * (BOX_W + GAP), y = GAP;
      var g = svgEl('g', { class: 'region', 'data-region': n });
      g.append(svgEl('rect', { x: x, y: y, width: BOX_W, height: boxH, rx: 10, class: 'region-box' + (r.reachable === false ? ' unreachable' : '') }));
      g.append(svgEl('rect', { x: x, y: y, width: BOX_W, height: HEAD - 14, rx: 10, class: 'region-head' }));
      g.append(svgEl('rect', { x: x, y: y + HEAD - 24, width: BOX_W, height: 10, class: 'region-head' }));
      g.append(svgEl('text', { x: x + 14, y: y + 26, class: 'region-name' }, clip(n, 24)));
      if (r.jurisdiction) {
        var jw = 14 + 8 * String(r.jurisdiction).length;
        g.append(svgEl('rect', { x: x + BOX_W - jw - 12, y: y + 10, width: jw, height: 20, rx: 10, class: 'juris-tag' }));
        g.append(svgEl('text', { x: x + BOX_W - jw / 2 - 12, y: y + 24, 'text-anchor': 'middle', class: 'region-juris' }, clip(r.jurisdiction, 10)));
      }
      var meta = 'store: ' + (r.driver || '?') + ' \u00b7 ' + (r.reachable === false ? 'unreachable' : 'reachable') +
        ' \u00b7 ' + byRegion[n].length + (byRegion[n].length === 1 ? ' tenant' : ' tenants');
      g.append(svgEl('text', { x: x + 14, y: y + HEAD + 8, class: 'region-meta' }, meta));
      if (byRegion[n].length === 0) {
        g.append(svgEl('text', { x: x + 14, y: y + HEAD + 40, class: 'empty-note' }, 'no tenants yet'));
      }
      byRegion[n].forEach(function (t, k) {
        var py = y + HEAD + 24 + k * (PILL_H + PILL_GAP);
        var st = stateClass(t.keyState || 'none');
        var tg = svgEl('g', { class: 'tenant', 'data-tenant': t.id });
        tg.append(svgEl('title', {}, t.id + ' in ' + n + ': custody ' + (t.custody || 'none') + ', key ' + (t.keyState || 'none')));
        tg.append(svgEl('rect', { x: x + 12, y: py, width: BOX_W - 24, height: PILL_H, rx: 8, class: 'tenant-pill' }));
        tg.append(svgEl('circle', { cx: x + 30, cy: py + PILL_H / 2, r: 7, class: 'pin-' + st }));
        tg.append(svgEl('text', { x: x + 46, y: py + 17, class: 'tenant-name' }, clip(t.id, 30)));
        tg.append(svgEl('text', { x: x + 46, y: py + 32, class: 'tenant-meta' },
          clip((t.custody || 'no key') + (t.provider ? ' \u00b7 ' + t.provider : '') + ' \u00b7 key ' + (t.keyState || 'none') + (t.status && t.status !== 'active' ? ' \u00b7 ' + t.status : ''), 40)));
        g.append(tg);
      });
      svg.append(g);
    });
    ui.diagram.replaceChildren(svg);
  }

  /* ---- tenants table ---- */
  function badge(state) {
    var s = state || 'none';
    return el('span', { class: 'badge badge-' + stateClass(s), text: s });
  }
  function renderTable() {
    if (tenants.length === 0) {
      ui.tbody.replaceChildren(el('tr', {}, [el('td', { colspan: 9, class: 'empty', text: 'No tenants yet. Onboard one below.' })]));
      return;
    }
    ui.tbody.replaceChildren.apply(ui.tbody, tenants.map(function (t) {
      var actions = el('div', { class: 'actions' });
      if (t.keyState === 'revoked') {
        var restore = el('button', { type: 'button', class: 'small', text: 'Restore key', 'aria-label': 'Restore key of ' + t.id });
        restore.addEventListener('click', function () { restoreKey(t.id, restore); });
        actions.append(restore);
      } else if (t.custody && t.keyState !== 'destroyed') {
        var revoke = el('button', { type: 'button', class: 'small danger', text: 'Revoke key', 'aria-label': 'Revoke key of ' + t.id });
        revoke.addEventListener('click', function () { askRevoke(t, revoke); });
        actions.append(revoke);
      } else {
        actions.append(el('span', { class: 'muted', text: '\u2014' }));
      }
      var reports = el('div', { class: 'actions' });
      REPORT_FORMATS.forEach(function (f) {
        var b = el('button', { type: 'button', class: 'small', text: f.label, 'aria-label': f.label + ' residency report of ' + t.id + ' (download)' });
        b.addEventListener('click', function () { downloadReport(t.id, f, b); });
        reports.append(b);
      });
      var status = t.status && t.status !== 'active' ? el('span', { class: 'badge badge-suspended', text: t.status }) : el('span', { text: t.status || '' });
      return el('tr', { 'data-tenant': t.id }, [
        el('th', { scope: 'row' }, [el('span', { text: t.id })]),
        el('td', { class: 'nowrap', text: t.region }),
        el('td', {}, [status]),
        el('td', { text: t.custody || 'none' }),
        el('td', { text: t.provider || '\u2014' }),
        el('td', {}, [t.keyId ? el('code', { class: 'keyref', text: t.keyId }) : el('span', { class: 'muted', text: '\u2014' })]),
        el('td', { class: 'key-state' }, [badge(t.keyState)]),
        el('td', {}, [actions]),
        el('td', {}, [reports])
      ]);
    }));
  }

  /* ---- revoke (in-page confirmation) / restore ---- */
  function askRevoke(t, trigger) {
    pendingRevoke = t.id;
    lastTrigger = trigger;
    ui.dialogTitle.textContent = 'Revoke the key of ' + t.id + '?';
    ui.dialogText.textContent = 'Every read and write of ' + t.id + '\u2019s sensitive fields will fail (ERR_KEY_REVOKED) until the key is restored. ' +
      'Rows stay where they are, sealed. The change is audited.';
    ui.dialog.returnValue = '';
    if (typeof ui.dialog.showModal === 'function') ui.dialog.showModal(); else ui.dialog.setAttribute('open', '');
    ui.dialogCancel.focus();
  }
  ui.dialog.addEventListener('close', function () {
    var id = pendingRevoke;
    pendingRevoke = null;
    if (id && ui.dialog.returnValue === 'confirm') revokeKey(id);
    else if (lastTrigger && lastTrigger.isConnected) lastTrigger.focus();
  });
  async function revokeKey(id) {
    try {
      var body = await apiJson('POST', tenantPath(id, '/revoke'));
      await reloadTenants();
      showInfo('Key of ' + id + ' revoked (key state: ' + ((body.tenant && body.tenant.keyState) || 'revoked') + ').');
    } catch (e) { showError(e); }
  }
  async function restoreKey(id, button) {
    button.disabled = true;
    try {
      var body = await apiJson('POST', tenantPath(id, '/restore'));
      await reloadTenants();
      showInfo('Key of ' + id + ' restored (key state: ' + ((body.tenant && body.tenant.keyState) || 'enabled') + ').');
    } catch (e) { button.disabled = false; showError(e); }
  }

  /* ---- report download (bearer header needed, so fetch + Blob) ---- */
  function fileNameFrom(disposition) {
    if (!disposition) return null;
    var m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
    if (!m) return null;
    var name;
    try { name = decodeURIComponent(m[1]); } catch (_) { name = m[1]; }
    name = name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '');
    return name || null;
  }
  async function downloadReport(id, f, button) {
    button.disabled = true;
    try {
      var res = await api('GET', tenantPath(id, '/report?format=' + f.format));
      var data = await res.blob();
      /* Re-typed as octet-stream: the file is saved, never rendered inside this origin. */
      var blob = new Blob([data], { type: 'application/octet-stream' });
      var name = fileNameFrom(res.headers.get('Content-Disposition')) || ('residency-report-' + id + '.' + f.ext);
      var url = URL.createObjectURL(blob);
      var a = el('a', { href: url, download: name, class: 'sr-only', text: name });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 30000);
      showInfo('Downloaded ' + name + '.');
    } catch (e) { showError(e); }
    finally { button.disabled = false; }
  }

  /* ---- onboarding form ---- */
  function renderRegionSelect() {
    var keep = ui.region.value;
    // A region once, whatever its cells (placement on a cell is automatic).
    var seen = {};
    var choices = regions.filter(function (r) { var k = r.region || r.name; if (seen[k]) return false; seen[k] = true; return true; });
    ui.region.replaceChildren.apply(ui.region, choices.map(function (r) {
      var name = r.region || r.name;
      var down = regions.some(function (x) { return (x.region || x.name) === name && x.reachable === false; });
      return el('option', { value: name, text: name + (r.jurisdiction ? ' (' + r.jurisdiction + ')' : '') + (down ? ' \u2014 unreachable' : '') });
    }));
    if (keep && choices.some(function (r) { return (r.region || r.name) === keep; })) ui.region.value = keep;
  }
  function syncCustody() {
    var c = ui.custody.value;
    var hyok = c === 'hyok';
    ui.hyok.hidden = !hyok;
    ui.hyok.disabled = !hyok;
    ['ob-xks-endpoint', 'ob-xks-access-key-id', 'ob-xks-secret'].forEach(function (id) { byId(id).required = hyok; });
    ui.keyId.required = hyok;
    ui.provider.disabled = c === 'none' || hyok;
    ui.keyId.disabled = c === 'none';
  }
  ui.custody.addEventListener('change', syncCustody);
  function val(id) { var v = byId(id).value.trim(); return v === '' ? undefined : v; }
  ui.onboardForm.addEventListener('submit', async function (ev) {
    ev.preventDefault();
    var custody = ui.custody.value;
    var req = { id: val('ob-id'), region: ui.region.value, custody: custody };
    if (custody !== 'none') {
      if (custody !== 'hyok' && val('ob-provider')) req.provider = val('ob-provider');
      if (val('ob-key-id')) req.keyId = val('ob-key-id');
    }
    if (custody === 'hyok') {
      req.xks = {
        endpoint: val('ob-xks-endpoint'),
        credentials: { accessKeyId: val('ob-xks-access-key-id'), secretAccessKey: byId('ob-xks-secret').value }
      };
      if (val('ob-xks-uri-prefix')) req.xks.uriPrefix = val('ob-xks-uri-prefix');
      if (val('ob-xks-ca')) req.xks.caPem = byId('ob-xks-ca').value;
    }
    var submit = byId('ob-submit');
    submit.disabled = true;
    ui.obResult.hidden = true;
    showInfo('Onboarding ' + req.id + '\u2026');
    try {
      var body = await apiJson('POST', '/admin/api/tenants', req);
      var t = body.tenant || {};
      byId('ob-id').value = '';
      byId('ob-xks-secret').value = '';
      byId('ob-xks-ca').value = '';
      var steps = Array.isArray(body.nextSteps) ? body.nextSteps : [];
      ui.obResultTitle.textContent = steps.length ? 'Next steps for ' + t.id : 'Nothing else to do for ' + t.id;
      ui.nextSteps.replaceChildren.apply(ui.nextSteps, steps.map(function (s) { return el('li', { text: String(s) }); }));
      ui.obResult.hidden = false;
      await reloadTenants();
      showInfo('Tenant ' + t.id + ' onboarded in ' + t.region + ' (custody ' + (t.custody || 'none') + ', key ' + (t.keyState || 'none') + ').');
    } catch (e) {
      byId('ob-xks-secret').value = '';
      showError(e);
    } finally { submit.disabled = false; }
  });

  /* ---- wiring ---- */
  ui.loginForm.addEventListener('submit', async function (ev) {
    ev.preventDefault();
    var t = ui.token.value.trim();
    if (!t) return;
    clearStatus();
    if (await signIn(t)) showInfo('Signed in. ' + tenants.length + (tenants.length === 1 ? ' tenant' : ' tenants') + ' in ' + regions.length + ' regions.');
  });
  ui.logout.addEventListener('click', function () { signOut(false); });
  ui.refresh.addEventListener('click', async function () {
    try { await loadAll(); showInfo('Refreshed.'); } catch (e) { showError(e); }
  });
  syncCustody();
  var saved = null;
  try { saved = sessionStorage.getItem(TOKEN_KEY); } catch (_) { /* storage disabled */ }
  if (saved) signIn(saved); else ui.token.focus();
})();
`
