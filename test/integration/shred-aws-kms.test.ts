/**
 * aws-kms destroyKey contract test (ScheduleKeyDeletion), issue #10 item 4.
 *
 * THIS MACHINE CANNOT REACH AWS. The adapter runs with the real @aws-sdk/client-kms against the
 * loopback fake KMS (test/support/fake-kms-server.ts). The fake has no ScheduleKeyDeletion, so a
 * small front server here answers that operation the way KMS documents it (KeyId as an ARN,
 * DeletionDate in epoch seconds, KeyState PendingDeletion; KMSInvalidStateException for a key
 * already pending deletion), adds DeletionDate to DescribeKey of such a key, and forwards every
 * other request to the fake unchanged. What this proves: the request the adapter sends, how the
 * answer and the errors are mapped, the waiting-period option, and the conformance suite's destroy
 * case. What it does not prove: IAM permissions (kms:ScheduleKeyDeletion) and real key states.
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isDomicileError } from '../../src/errors.js'
import { createAwsKmsKeyProvider, type AwsKmsKeyProvider } from '../../src/keys/providers/aws-kms.js'
import { RuntimeKeyProvider } from '../../src/keys/runtime-key-provider.js'
import { MemoryAuditSink } from '../../src/audit/audit-sink.js'
import { runKeyProviderSuite } from '../conformance/key-provider-suite.js'
import { FakeKmsServer } from '../support/fake-kms-server.js'

const credentials = { accessKeyId: 'AKIAFAKEFAKEFAKEFAKE', secretAccessKey: 'fake-secret-access-key-for-contract-tests' }
const DAY_S = 24 * 60 * 60

/** ScheduleKeyDeletion in front of the fake KMS; everything else is forwarded. */
class ScheduleFront {
  readonly scheduled = new Map<string, number>()
  readonly requests: Array<{ target: string; body: Record<string, unknown> }> = []
  constructor(readonly kms: FakeKmsServer, readonly server: Server) {}

  static async start(kms: FakeKmsServer): Promise<ScheduleFront> {
    let self: ScheduleFront | undefined
    const server = createServer((req, res) => void self!.handle(req, res))
    self = new ScheduleFront(kms, server)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
    return self
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  async handle(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const raw = Buffer.concat(chunks)
    const target = String(req.headers['x-amz-target'] ?? '')
    const body = raw.length ? JSON.parse(raw.toString('utf8')) as Record<string, unknown> : {}
    this.requests.push({ target, body })
    const send = (status: number, payload: unknown) => {
      const text = JSON.stringify(payload)
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(text) })
      res.end(text)
    }
    const id = typeof body.KeyId === 'string' ? body.KeyId.replace(/^arn:aws:kms:[^:]+:\d{12}:key\//, '') : ''
    if (target === 'TrentService.ScheduleKeyDeletion') {
      const days = body.PendingWindowInDays
      if (typeof days !== 'number' || days < 7 || days > 30) return send(400, { __type: 'ValidationException', message: 'PendingWindowInDays' })
      if (this.scheduled.has(id)) return send(400, { __type: 'KMSInvalidStateException', message: `${this.kms.arn(id)} is pending deletion.` })
      try {
        this.kms.setKeyState(id, 'PendingDeletion')
      } catch {
        return send(400, { __type: 'NotFoundException', message: 'Key does not exist' })
      }
      const at = Math.floor(Date.now() / 1000) + days * DAY_S
      this.scheduled.set(id, at)
      return send(200, { KeyId: this.kms.arn(id), DeletionDate: at, KeyState: 'PendingDeletion', PendingWindowInDays: days })
    }
    // Forward to the fake; DescribeKey of a scheduled key gains its DeletionDate.
    const fwd = request(`${this.kms.endpoint}/`, { method: req.method, headers: req.headers }, (up) => {
      const parts: Buffer[] = []
      up.on('data', (c: Buffer) => parts.push(c))
      up.on('end', () => {
        let text = Buffer.concat(parts).toString('utf8')
        if (target === 'TrentService.DescribeKey' && up.statusCode === 200 && this.scheduled.has(id)) {
          const j = JSON.parse(text) as { KeyMetadata: Record<string, unknown> }
          j.KeyMetadata.DeletionDate = this.scheduled.get(id)
          text = JSON.stringify(j)
        }
        res.writeHead(up.statusCode ?? 500, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(text) })
        res.end(text)
      })
    })
    fwd.end(raw)
  }

  async close(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}

function adapter(front: ScheduleFront, extra: { deletionWindowDays?: number } = {}): AwsKmsKeyProvider {
  return createAwsKmsKeyProvider({ name: 'kms-eu', region: front.kms.region, endpoint: front.endpoint, credentials, maxAttempts: 1, ...extra })
}

describe('aws-kms destroyKey contract (ScheduleKeyDeletion)', () => {
  let kms: FakeKmsServer
  let front: ScheduleFront

  before(async () => {
    kms = await FakeKmsServer.start({ region: 'eu-west-1' })
    front = await ScheduleFront.start(kms)
  })
  after(async () => {
    await front.close()
    await kms.close()
  })

  test('destroyKey sends ScheduleKeyDeletion with the 7-day minimum and returns the deletion date', async () => {
    const audit = new MemoryAuditSink()
    const rt = new RuntimeKeyProvider(adapter(front), { audit })
    const keyId = kms.createKey()
    const start = front.requests.length
    const t0 = Date.now()
    const r = await rt.destroyKey!(keyId)
    assert.deepEqual(front.requests.slice(start).map((q) => [q.target, q.body]), [['TrentService.ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 }]])
    assert.equal(r.state, 'pending-deletion')
    const days = (r.deletionDate!.getTime() - t0) / (DAY_S * 1000)
    assert.ok(days > 6.99 && days < 7.01, `deletion in 7 days, got ${days}`)
    assert.equal((await rt.keyStatus(keyId)).state, 'deleted')
    const ev = audit.events.find((e) => e.type === 'key.destroy')
    assert.equal(ev?.detail?.deletionDate, r.deletionDate!.toISOString())
    // Run again (an interrupted destruction resumes): the existing schedule is reported, not an error.
    const again = await rt.destroyKey!(keyId)
    assert.equal(again.deletionDate!.getTime(), r.deletionDate!.getTime())
    await rt.close()
  })

  test('the waiting period is configurable from 7 to 30 days', async () => {
    const rt = new RuntimeKeyProvider(adapter(front, { deletionWindowDays: 30 }))
    const keyId = kms.createKey()
    await rt.destroyKey!(keyId)
    assert.equal(front.requests.at(-1)?.body.PendingWindowInDays, 30)
    await rt.close()
  })

  test('Precondition: the deletion waiting period is an integer from 7 to 30 days (what KMS accepts).', () => {
    for (const days of [6, 31, 7.5]) {
      assert.throws(() => adapter(front, { deletionWindowDays: days }), (e: unknown) => isDomicileError(e, 'ERR_CONFIG_INVALID'))
    }
  })

  test('an unknown key is ERR_KEY_NOT_FOUND', async () => {
    const rt = new RuntimeKeyProvider(adapter(front))
    await assert.rejects(rt.destroyKey!('00000000-0000-4000-8000-00000000dead'), (e: unknown) => isDomicileError(e, 'ERR_KEY_NOT_FOUND'))
    await rt.close()
  })
})

runKeyProviderSuite({
  name: 'aws-kms (contract, fake KMS with ScheduleKeyDeletion)',
  async setup() {
    const kms = await FakeKmsServer.start({ region: 'eu-west-1' })
    const front = await ScheduleFront.start(kms)
    const keyId = kms.createKey()
    const provider = adapter(front)
    return {
      provider,
      keyId,
      unknownKeyId: '00000000-0000-4000-8000-00000000dead',
      revoke: async () => kms.disableKey(keyId),
      restore: async () => kms.enableKey(keyId),
      disposableKey: async () => kms.createKey(),
      async teardown() {
        await provider.close()
        await front.close()
        await kms.close()
      },
    }
  },
})
