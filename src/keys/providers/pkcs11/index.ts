/**
 * The pkcs11 (HSM) key provider and the PKCS#11 session it is built on (also used by the
 * reference XKS key proxy as its HSM keystore). Requires the optional peer dependency pkcs11js.
 */

export { createPkcs11KeyProvider, DEFAULT_PKCS11_LIBRARY } from './pkcs11-key-provider.js'
export type { Pkcs11KeyProvider, Pkcs11KeyProviderOptions } from './pkcs11-key-provider.js'
export { Pkcs11Session, MAX_GCM_INPUT_BYTES } from '../../../pkcs11/pkcs11-session.js'
export type { Pkcs11SessionOptions, GcmSealed, Pkcs11KeyInfo } from '../../../pkcs11/pkcs11-session.js'
