/**
 * The Hono environment of the HTTP service: what a request carries between middleware and handlers
 * (the tenant API key's principal, the region label for metrics, the CSP nonce of the console page).
 */
import type { ApiKeyPrincipal } from './api-keys.js'

export interface ServiceEnv {
  Variables: {
    /** The verified tenant API key (tenant API only). */
    principal: ApiKeyPrincipal
    /** The tenant's home region, for per-region metrics; unset outside the tenant API. */
    region: string
    /** The stable code of the error answered, for metrics. */
    errorCode: string
  }
}
