/**
 * Global reference tables (catalogs, feature flags, price lists): written to the control plane
 * through an outbox, replicated to every region's store in version order, read locally.
 * See docs/GLOBAL-TABLES.md.
 */
export { upsertGlobal, deleteGlobal, GLOBAL_CHANNEL, type GlobalWriteOptions, type GlobalWriteResult } from './global-write.js'
export { replicateOnce, replicateRegion, type RegionReplication } from './global-replicator.js'
export { replicationStatus, type ReplicationStatus, type RegionReplicationStatus } from './replication-status.js'
export { startGlobalReplication, type GlobalReplicationOptions, type StopGlobalReplication } from './replication-loop.js'
export { listGlobal, type ListGlobalOptions } from './global-read.js'
