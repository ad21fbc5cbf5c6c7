/** The `local` key provider (embedded default, with BYOK import). */
export { createLocalKeyProvider, LocalKeyProvider } from './local-key-provider.js'
export type { ImportJob, ImportKeyMaterialRequest, LocalKeyProviderOptions } from './local-key-provider.js'
export { defaultRootKeyFile, ROOT_KEY_ENV, ROOT_KEY_FILE } from './root-key.js'
