/**
 * The key-provider conformance suite against the `xks` provider talking to the reference key proxy
 * as a real child process, twice: once with the proxy's file keystore, once with its PKCS#11
 * keystore on a fresh SoftHSM2 token. Revoke = `domicile keyproxy disable-key` run as a child
 * process; restore = `enable-key`.
 *
 * Over HTTPS: `keyproxy serve` with the TLS pair `keyproxy init` generated, the client trusting its
 * certificate through `caFile`.
 *
 * Deadline: 1 s instead of the 250 ms production default, so a loaded 2-core CI box does not turn
 * a behaviour test into a latency test (the 250 ms deadline is tested in xks-provider.test.ts).
 */
import { randomBytes } from 'node:crypto'
import { runKeyProviderSuite, type KeyProviderFixture } from '../conformance/key-provider-suite.js'
import { createXksKeyProvider } from '../../src/keys/providers/xks/xks-key-provider.js'
import { createSoftHsmToken, softHsmSkip } from '../support/softhsm.js'
import { createKeyViaCli, initKeyProxyDir, runKeyproxyCliOk, startKeyProxyProcess } from '../support/keyproxy-process.js'

const TIMEOUT_MS = 1000

async function xksFixture(serveArgs: readonly string[], env: NodeJS.ProcessEnv | undefined, cleanupExtra: () => Promise<void>): Promise<KeyProviderFixture> {
  const dir = await initKeyProxyDir()
  const proxy = await startKeyProxyProcess({ dir: dir.dir, uriPrefix: '/tenants/acme', extraArgs: serveArgs, ...(env ? { env } : {}) })
  const cliOpts = env ? { env } : {}
  const keyId = await createKeyViaCli(dir.dir, serveArgs, env)
  const provider = createXksKeyProvider({
    name: 'acme-xks',
    ...proxy.providerOptions,
    timeoutMs: TIMEOUT_MS,
  })
  /* The proxy serves HTTPS with the self-signed pair `keyproxy init` made; the client trusts it through caFile. */
  if (!proxy.url.startsWith('https://') || proxy.caFile === undefined) throw new Error('the conformance suite runs over HTTPS')
  await provider.health() // warm the keep-alive connection
  return {
    provider,
    keyId,
    revoke: async () => { await runKeyproxyCliOk(['disable-key', keyId, '--dir', dir.dir, ...serveArgs], cliOpts) },
    restore: async () => { await runKeyproxyCliOk(['enable-key', keyId, '--dir', dir.dir, ...serveArgs], cliOpts) },
    teardown: async () => {
      await provider.close()
      const code = await proxy.stop()
      await dir.cleanup()
      await cleanupExtra()
      if (code !== 0) throw new Error(`keyproxy serve exited ${code}: ${proxy.stderrTail()}`)
    },
  }
}

runKeyProviderSuite({
  name: 'xks (keyproxy child process, file keystore)',
  timeoutMs: TIMEOUT_MS,
  setup: () => xksFixture([], undefined, async () => undefined),
})

const hsmSkip = softHsmSkip()
runKeyProviderSuite({
  name: 'xks (keyproxy child process, PKCS#11 keystore on SoftHSM2)',
  timeoutMs: TIMEOUT_MS,
  skip: hsmSkip,
  setup: async () => {
    const pin = `pin-${randomBytes(4).toString('hex')}`
    const token = await createSoftHsmToken({ label: 'xks-conf', pin, soPin: `so-${randomBytes(4).toString('hex')}` })
    // createSoftHsmToken pointed SOFTHSM2_CONF at the fresh token; the children inherit it.
    const env = { ...process.env, SOFTHSM2_CONF: token.confPath, XKS_TEST_PIN: pin }
    const args = ['--pkcs11-lib', token.library, '--token', token.label, '--pin-env', 'XKS_TEST_PIN']
    try {
      return await xksFixture(args, env, () => token.cleanup())
    } catch (e) {
      await token.cleanup()
      throw e
    }
  },
})
