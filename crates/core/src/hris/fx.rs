//! A fast hash map for the readers' per-row lookups.

/// A hash map keyed with foldhash: fast, and its every output bit depends on every input
/// byte. The readers once used a hand-written Fx hash, whose low bits (the ones a table
/// indexes by) hardly vary across ids that share a prefix (`E0000001`, `E0000002`, …), so
/// 100,000 employees probed long chains and compared strings on every row.
pub(super) type FxMap<K, V> = foldhash::HashMap<K, V>;
