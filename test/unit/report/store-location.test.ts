/**
 * Store addresses in a residency report carry no credentials: user names, passwords and query
 * parameters of a connection URL are dropped, an unparseable URL is not echoed, PGlite shows only
 * its data directory's last segment.
 */
import { strict as assert } from 'node:assert'
import { describe, test } from 'node:test'
import { describeStore, endpointOrigin } from '../../../src/report/store-location.js'

describe('store location', () => {
  test('a postgres URL keeps host, port, database and sslmode, never user, password or other parameters', () => {
    const s = describeStore({ driver: 'postgres', url: 'postgres://app_user:s3cr3t%21pw@db.eu.example:6543/appdb?sslmode=verify-full&password=other-secret&application_name=x', ownerUrl: 'postgres://owner:owner-secret@db.eu.example/appdb' })
    assert.equal(s.host, 'db.eu.example')
    assert.equal(s.port, 6543)
    assert.equal(s.database, 'appdb')
    assert.equal(s.sslmode, 'verify-full')
    assert.equal(s.separateOwnerLogin, true)
    assert.equal(s.location, 'PostgreSQL at db.eu.example:6543, database appdb')
    const text = JSON.stringify(s)
    for (const secret of ['app_user', 's3cr3t', 'other-secret', 'owner-secret', 'owner:', 'application_name']) assert.ok(!text.includes(secret), `no ${secret}`)
  })

  test('a URL from the environment is read there; an unset or unparseable one is not echoed', () => {
    const env = { EU_URL: 'postgresql://u:pw-in-env@10.0.0.5/region' }
    const s = describeStore({ driver: 'postgres', urlEnv: 'EU_URL' }, env)
    assert.equal(s.host, '10.0.0.5')
    assert.equal(s.port, 5432)
    assert.ok(!JSON.stringify(s).includes('pw-in-env'))
    assert.equal(describeStore({ driver: 'postgres', urlEnv: 'UNSET_URL' }, {}).host, null)
    const bad = describeStore({ driver: 'postgres', url: 'not a url with password hunter2' })
    assert.equal(bad.host, null)
    assert.ok(!JSON.stringify(bad).includes('hunter2'))
  })

  test('a socket directory host is not printed as a path', () => {
    const s = describeStore({ driver: 'postgres', url: 'postgres://u:p@/db?host=/var/run/postgresql' })
    assert.equal(s.host, 'local socket')
  })

  test('PGlite: "embedded PGlite" and the data directory\'s last segment only', () => {
    const s = describeStore({ driver: 'pglite', dataDir: '/home/alice/projects/app/.domicile/regions/eu-west-1' })
    assert.equal(s.dataDir, 'eu-west-1')
    assert.match(s.location, /^embedded PGlite/)
    assert.ok(!JSON.stringify(s).includes('alice'))
    assert.equal(describeStore({ driver: 'pglite', dataDir: 'memory://' }).dataDir, 'memory')
  })

  test('a key service endpoint is reduced to its origin', () => {
    assert.equal(endpointOrigin('https://user:pw@xks.example:8443/kms/xks/v1?x=1'), 'https://xks.example:8443')
    assert.equal(endpointOrigin('ftp://x'), null)
    assert.equal(endpointOrigin('nope'), null)
  })
})
