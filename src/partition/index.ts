// Public surface of src/partition: key → partition → shard group. Pure; the WASM load is the only async step.
export { createPartitioner, loadXxh64, MAX_PARTITIONS, type Partitioner, type Xxh64 } from './hash.ts';
export {
  assignOwners,
  diff,
  loadCap,
  DEFAULT_LOAD_FACTOR,
  DEFAULT_VNODES,
  type AssignInput,
  type Move,
} from './assign.ts';
export {
  decodeTable,
  encodeTable,
  checkTable,
  summarize,
  DEFAULT_PARTITIONS,
  TableDecodeError,
  type GroupLoad,
  type PartitionTable,
} from './table.ts';
