/**
 * The reference HYOK key proxy (XKS API v1) a customer runs in their own environment, its keystores
 * and its credentials file. The PKCS#11 keystore is exported from './pkcs11-keystore.js' directly so
 * that importing this module never loads the PKCS#11 binding.
 */

export { startKeyProxy, DEFAULT_MAX_BODY_BYTES } from './keyproxy-server.js'
export type { KeyProxyOptions, KeyProxyHandle, KeyProxyCredential, KeyProxyLogEvent } from './keyproxy-server.js'
export { FileKeystore } from './file-keystore.js'
export type { ProxyKeystore, ProxyKeyState, GcmSealed } from './proxy-keystore.js'
export { generateCredential, readCredentialsFile, createCredentialsFile, CREDENTIALS_FILE } from './keyproxy-credentials.js'
export { runKeyproxyCommand } from './keyproxy-cli.js'
