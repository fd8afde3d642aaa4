//! The reconciler: reads the live tenant through `cxone`, asks `core` for a plan, and (next)
//! executes it and journals every write.
#![deny(missing_docs)]

mod live;

pub use live::{LiveProgress, read_live};
