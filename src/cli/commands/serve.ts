/**
 * `domicile serve [--port N] [--host H]`: the HTTP service (tenant API, admin API, /healthz,
 * /metrics, web console) on the configured regions. Prints the URL (with --json one line
 * `{"url":...}`), runs until SIGTERM or SIGINT, then stops accepting, lets requests in flight
 * finish and closes Domicile so embedded stores flush. The admin token comes from
 * $DOMICILE_ADMIN_TOKEN; without it the admin API (and the console's actions) stay disabled.
 */
import { DomicileError } from '../../errors.js'
import { intOption, stringOption, type Command } from '../cli-args.js'
import { printJson, println } from '../cli-output.js'

const HOST = /^[A-Za-z0-9.:-]{1,253}$|^\[[0-9A-Fa-f:.]+\]$/

export const serveCommand: Command = {
  spec: {
    synopsis: 'serve [--port N] [--host H]',
    summary: 'run the HTTP service: tenant API, admin API ($DOMICILE_ADMIN_TOKEN), /healthz, /metrics and the console at /',
    options: { port: { type: 'string' }, host: { type: 'string' } },
  },
  async run(p) {
    const port = intOption(p.values, 'port', 0, 65535) ?? 8080
    const host = stringOption(p.values, 'host') ?? '127.0.0.1'
    /* Precondition: --host is a host name or an IP address. */
    if (!HOST.test(host)) throw new DomicileError('ERR_INPUT_INVALID', '--host: expected a host name or an IP address, e.g. 127.0.0.1 or 0.0.0.0.', { path: '--host' })
    const { createDomicile } = await import('../../index.js')
    const { serve } = await import('../../service/http-service.js')
    const d = await createDomicile(p.configPath === undefined ? {} : { configPath: p.configPath })
    let server: Awaited<ReturnType<typeof serve>> | undefined
    try {
      server = await serve(d, { port, hostname: host })
    } catch (e) {
      await d.close()
      if ((e as { code?: unknown }).code === 'EADDRINUSE') throw new DomicileError('ERR_INPUT_INVALID', `--port: port ${port} is in use on ${host}. Pick another with --port N (0 = any free port).`, { path: '--port' })
      throw e
    }
    // Global tables: this process keeps every region's copy current (outbox poll + NOTIFY).
    const { startGlobalReplication } = await import('../../global/index.js')
    const stopReplication = startGlobalReplication(d)
    const adminOn = Boolean(process.env.DOMICILE_ADMIN_TOKEN)
    if (p.json) printJson({ url: server.url, admin: adminOn })
    else {
      println(`domicile serve: listening on ${server.url}`)
      println(adminOn ? `console: ${server.url}/ (log in with the value of DOMICILE_ADMIN_TOKEN)` : 'admin API and console actions disabled: set DOMICILE_ADMIN_TOKEN to enable them')
    }
    const s = server
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGTERM', stop)
        process.off('SIGINT', stop)
        resolve()
      }
      process.on('SIGTERM', stop)
      process.on('SIGINT', stop)
    })
    await stopReplication()
    await s.close()
    await d.close()
    if (!p.json) println('domicile serve: stopped')
    return 0
  },
}
