/**
 * The reference HYOK key proxy (XKS API v1) a customer runs in their own environment, its keystores,
 * its credentials file and its TLS certificates. The PKCS#11 keystore is exported from
 * './pkcs11-keystore.js' directly so that importing this module never loads the PKCS#11 binding.
 */

export { startKeyProxy, DEFAULT_MAX_BODY_BYTES } from './keyproxy-server.js'
export type { KeyProxyOptions, KeyProxyTlsOptions, KeyProxyHandle, KeyProxyCredential, KeyProxyLogEvent } from './keyproxy-server.js'
export { FileKeystore } from './file-keystore.js'
export type { ProxyKeystore, ProxyKeyState, ProxyKeyInfo, ProxyKeySpec, ProxyKeyUsage, CreateProxyKeyOptions, GcmSealed } from './proxy-keystore.js'
export { generateCredential, readCredentialsFile, createCredentialsFile, addCredential, retireCredential, CREDENTIALS_FILE } from './keyproxy-credentials.js'
export { createSelfSignedPair, issueCertificate, DEFAULT_TLS_NAMES } from './tls-certificate.js'
export type { CertificateRequest, TlsPair } from './tls-certificate.js'
export { runKeyproxyCommand, DEFAULT_URI_PREFIX } from './keyproxy-cli.js'
