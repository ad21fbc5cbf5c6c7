/**
 * The web console's stylesheet, inlined into the page by console-page.ts under the CSP nonce.
 * No inline `style=` attributes anywhere in the console (a nonce-only `style-src` refuses them):
 * every look is a class here, and the diagram's colours are classes on its SVG shapes.
 */

export const CONSOLE_STYLE = `
:root{--fg:#1f2328;--muted:#57606a;--bg:#f6f8fa;--card:#fff;--line:#d0d7de;--accent:#0b5cad;
  --ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--off:#6e7781;--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
*{box-sizing:border-box}
[hidden]{display:none!important}
html{background:var(--bg)}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--fg)}
.top{display:flex;align-items:center;justify-content:space-between;gap:16px;padding:12px 24px;background:#0d1117;color:#fff}
.top h1{font-size:18px;margin:0;font-weight:600;letter-spacing:.01em}
.top h1 .sub{font-weight:400;color:#9ea7b3}
.top .session{display:flex;align-items:center;gap:12px;color:#c9d1d9}
.top button{background:#21262d;color:#fff;border-color:#30363d}
main{max-width:1200px;margin:0 auto;padding:8px 24px 48px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:16px 0}
.card-head{display:flex;align-items:baseline;justify-content:space-between;gap:12px}
h2{font-size:16px;margin:0 0 6px}
h3{font-size:14px;margin:12px 0 4px}
.hint{color:var(--muted);margin:0 0 12px}
.status{max-width:1200px;margin:12px auto 0;padding:0 24px}
.status .msg{padding:8px 12px;border-radius:6px;border:1px solid var(--line);background:#fff}
.status.error .msg{border-color:#ffcecb;background:#ffebe9;color:#82071e}
.status.info .msg{border-color:#b6e3ff;background:#ddf4ff;color:#0a3069}
.code{font-family:var(--mono);font-weight:600;margin-right:6px}
.login{max-width:560px}
.row{display:flex;gap:8px;align-items:flex-end;flex-wrap:wrap}
.row .field{flex:1 1 260px}
.table-wrap{overflow-x:auto}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:8px;border-bottom:1px solid var(--line);vertical-align:middle}
thead th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);font-weight:600;white-space:nowrap}
tbody th{font-weight:600;white-space:nowrap}
td.nowrap{white-space:nowrap}
td.empty{color:var(--muted);font-style:italic}
code{font-family:var(--mono);font-size:12px}
code.keyref{word-break:break-all}
.muted{color:var(--muted)}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:12px;font-weight:600;border:1px solid;white-space:nowrap}
.badge-enabled{color:var(--ok);background:#dafbe1;border-color:#aceebb}
.badge-revoked{color:#fff;background:var(--bad);border-color:var(--bad)}
.badge-pending-import{color:#7d4e00;background:#fff8c5;border-color:#d4a72c}
.badge-destroyed{color:#fff;background:#24292f;border-color:#24292f}
.badge-unavailable{color:#953800;background:#fff1e5;border-color:#ffc680}
.badge-none,.badge-other{color:var(--muted);background:#f6f8fa;border-color:var(--line)}
.badge-suspended{color:#953800;background:#fff1e5;border-color:#ffc680}
.actions{display:flex;gap:6px;flex-wrap:wrap}
button{font:inherit;white-space:nowrap;padding:5px 12px;border-radius:6px;border:1px solid var(--line);background:#f6f8fa;color:var(--fg);cursor:pointer}
button:hover{filter:brightness(.96)}
button:focus-visible,input:focus-visible,select:focus-visible,textarea:focus-visible{outline:2px solid var(--accent);outline-offset:2px}
button.primary{background:var(--accent);color:#fff;border-color:var(--accent)}
button.danger{color:var(--bad);border-color:#ffcecb;background:#fff}
button.danger.solid{background:var(--bad);color:#fff;border-color:var(--bad)}
button.small{padding:2px 8px;font-size:12px}
button:disabled{opacity:.6;cursor:default}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:12px 16px}
.field{display:flex;flex-direction:column;gap:4px}
.field.wide{grid-column:1/-1}
label{font-weight:600;font-size:13px}
.field .help{font-size:12px;color:var(--muted)}
input,select,textarea{font:inherit;padding:6px 8px;border:1px solid var(--line);border-radius:6px;background:#fff;color:var(--fg)}
textarea{font-family:var(--mono);font-size:12px;min-height:96px}
fieldset{grid-column:1/-1;border:1px solid var(--line);border-radius:6px;padding:12px;margin:0}
legend{font-weight:600;padding:0 4px}
.form-actions{grid-column:1/-1;display:flex;gap:8px}
.next-steps{margin-top:12px;padding:12px 16px;border:1px solid #b6e3ff;background:#f1f8ff;border-radius:6px}
.next-steps ol{margin:4px 0 0;padding-left:20px}
.next-steps li{font-family:var(--mono);font-size:12px;white-space:pre-wrap;word-break:break-word}
.diagram svg{max-width:100%;height:auto;display:block;margin:0 auto}
.legend{display:flex;gap:12px;flex-wrap:wrap;margin-top:8px;font-size:12px;color:var(--muted)}
svg .region-box{fill:#fff;stroke:#8c959f;stroke-width:1.5}
svg .region-box.unreachable{stroke:var(--bad);stroke-dasharray:6 4}
svg .region-head{fill:#0d1117}
svg .region-name{fill:#fff;font:600 15px system-ui,sans-serif}
svg .region-juris{fill:#fff;font:700 12px system-ui,sans-serif}
svg .juris-tag{fill:var(--accent)}
svg .region-meta{fill:var(--muted);font:12px system-ui,sans-serif}
svg .tenant-pill{fill:#f6f8fa;stroke:var(--line)}
svg .tenant-name{fill:var(--fg);font:600 13px system-ui,sans-serif}
svg .tenant-meta{fill:var(--muted);font:11px system-ui,sans-serif}
svg .pin-enabled{fill:var(--ok)}
svg .pin-revoked{fill:var(--bad)}
svg .pin-pending-import{fill:#d4a72c}
svg .pin-destroyed{fill:#24292f}
svg .pin-unavailable{fill:#fb8f44}
svg .pin-none,svg .pin-other{fill:#afb8c1}
svg .empty-note{fill:var(--muted);font:italic 12px system-ui,sans-serif}
.swatch{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:4px;vertical-align:-1px}
.swatch.pin-enabled{background:var(--ok)}.swatch.pin-revoked{background:var(--bad)}
.swatch.pin-pending-import{background:#d4a72c}.swatch.pin-destroyed{background:#24292f}
.swatch.pin-unavailable{background:#fb8f44}.swatch.pin-none{background:#afb8c1}
dialog{border:1px solid var(--line);border-radius:10px;padding:20px 24px;max-width:500px;box-shadow:0 8px 24px rgba(13,17,23,.25)}
dialog::backdrop{background:rgba(13,17,23,.55)}
dialog h2{margin-bottom:8px}
dialog .form-actions{justify-content:flex-end;margin-top:16px}
.sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
@media print{.top button,.actions,.card.onboard{display:none}}
`
