/**
 * Help text of the `domicile` command. Each command's own synopsis lives in its spec
 * (src/cli/commands/*); this is the overview printed by `domicile help`.
 */
import { EXIT_STATUS_HELP } from './exit-codes.js'

export const COMMON_OPTIONS_HELP = `Options for every command:
  --config PATH   config file (default: $DOMICILE_CONFIG, else ./domicile.config.json)
  --json          machine-readable output on stdout (errors too: {"error":{"code","message"}})
  -h, --help      print this help
`

export const USAGE = `Usage: domicile <command> [options]

Domicile keeps each tenant's rows in its home region and its sensitive fields under its own key.

Setup
  init [--dir DIR] [--force]            write domicile.config.json and domicile.schema.mjs
  migrate                               create or upgrade tables, row-level security and stamps
  region list                           the configured regions and whether they answer
  demo [--keep]                         residency and key custody demo in a temp directory
  serve [--port N] [--host H]           HTTP service: tenant API, admin API, /healthz, /metrics, console at /

Tenants
  tenant add ID --region R [--custody kms|byok|hyok|none] [--provider P] [--key-id K] [--cache-ttl-ms N]
                                        one step: tenant + key (default kms: a key at the provider-managed default)
  tenant add ID --region R --custody hyok --xks-endpoint URL [--xks-uri-prefix PATH]
      --xks-credentials FILE [--xks-ca FILE] --key-id K
                                        register the customer's XKS proxy with the tenant (credentials sealed in
                                        the control plane) after a health check and a test encrypt/decrypt
  tenant bind-key ID [--custody kms|byok|hyok] [...]   bind a key to a tenant added with --custody none
  tenant update-key-service ID [--xks-credentials FILE] [--xks-ca FILE] [--xks-timeout-ms N]
                                        new credentials / CA / deadline for the tenant's registered XKS proxy,
                                        checked against the proxy first; running processes switch within ~1 s
  tenant show ID
  tenant list
  tenant suspend ID
  tenant resume ID
  tenant move ID --to REGION            online move: copy, catch up, short write freeze, cutover, verify, purge
  tenant move ID --resume | --abort     finish or roll back a move that was interrupted

Rows (through the tenant's home region, like any application call)
  rows insert TENANT TABLE --data JSON
  rows get TENANT TABLE ID
  rows find TENANT TABLE --where JSON [--limit N]
  rows list TENANT TABLE [--limit N] [--cursor C]
  rows update TENANT TABLE ID --data JSON
  rows delete TENANT TABLE ID
  rows reveal TENANT TABLE ID COLUMN --purpose TEXT [--actor A]   (actor default: your OS user name)

Keys
  key import-job TENANT --out DIR       BYOK: write the wrapping public key and the import token
  key import TENANT --material FILE --token FILE
  key revoke TENANT [--actor A]         kill switch: the tenant's sealed fields become unreadable
  key restore TENANT [--actor A]
  key status TENANT                     our state and the key provider's, combined
  key rotate TENANT [--key-id K]        new key-encryption key: rewraps data and index keys only
  key rotate-data TENANT                new data key for writes; re-encrypts stored values in the background
  key rotate-index TENANT               new blind-index key; finds search under both until rebuilt
  key retire-data TENANT --key-number N delete an old data key's wrapped copy (refused while values use it)
  key destroy TENANT [--yes]            irreversible: destroy the key-encryption key and every wrapped key
  key delete-material TENANT [--yes]    BYOK: delete the imported material (customer-side kill switch)

Residency report
  report TENANT [--format json|md|html] [--out FILE]   signed report: region, store, keys, revocation bound, events
  report verify FILE [--public-key PEM] verify a report in any format; exit 1 on any edit

Residency lint
  lint [--src DIR ...] [--sample N]     fail (exit 1) on personal-looking columns or values in global tables and on
                                        direct store-driver imports (pg, PGlite) in DIR or config "lint.sources";
                                        prints every table's and column's classification

Analytics (aggregates computed inside each region; only aggregates leave it)
  analytics --table T [--group-by C ...] --measure count [--measure sum:COL|avg:COL|min:COL|max:COL ...]
      [--where COL=VALUE ...] [--min-group-size N]
                                        per-group count/sum/avg/min/max over every region's tenants; groups under
                                        N rows (default 5) suppressed in their region; lists unavailable regions

Global reference tables (written to the control plane, replicated to every region)
  global upsert TABLE --data JSON [--no-push]   write the control plane's copy, then push it to every region
  global delete TABLE ID [--no-push]
  global list TABLE [--region R]        a region's replica (default: the control plane's copy)
  replicate status                      per region: version applied, latest version, lag, reachable
  replicate run                         one catch-up pass (a region that was down catches up in order)

Audit log (SHA-256 hash chain per region and in the control plane)
  audit verify [--region R | --control-plane]   recompute the chains; exit 1 naming the first bad position
  audit tail --tenant T [--limit N]     the tenant's recent audit records, newest first (never plaintext)

Online migrations and shredding evidence
  migrate encrypt TABLE.COLUMN [--verify]   encrypt a plaintext column online, batch by batch, resumable
  migrate decrypt TABLE.COLUMN              the rollback of migrate encrypt
  migrate verify TABLE.COLUMN               prove that no plaintext remains (reads every row)
  shred verify TENANT --out FILE        check that the tenant's data cannot be opened; signed certificate
  shred public-key                      the public key that signs certificates
  shred check FILE                      verify a certificate; fails on any edit

Adopting an existing application database (docs/ADOPTING.md)
  adopt inspect --region R --tenant-column NAME [--out FILE [--force]] [--sensitive T.C,...] [--db-schema S]
                                        read it (read only) and propose a schema describing its tables as they
                                        are: tenant/global, sensitive-column suggestions with evidence
  adopt tenants --region R [--cell C] [--from-table T] [--custody kms|none]
                                        register every tenant found (tenant-column values), homed in R, each
                                        with a key; rerun adds only new ones
  adopt globals --region R [--cell C]   copy the adopted global tables' rows to the control plane and
                                        replicate them to every region (before moving tenants)
  demo --adopt                          the whole adoption path on embedded regions

Long operations show a progress bar on a terminal and progress lines otherwise; all take --json.

Reference HYOK key proxy
  keyproxy <command> ...                see "domicile keyproxy --help"

Other
  --version                             print the version of domicile

${COMMON_OPTIONS_HELP}
${EXIT_STATUS_HELP}`
