//! The memory cap of one step call: every linear memory and every table of the store counted
//! together against the step's `memory` limit, plus caps on how many instances, memories and
//! tables it may create.
//!
//! wasmtime's own `StoreLimits` caps each linear memory separately, so a component with
//! several memories (multi-memory is on by default) or large tables could hold many times the
//! limit. This limiter keeps a running total instead: wasmtime asks it before creating and
//! before growing any memory or table (creation is a growth from 0), and memories and tables
//! never shrink, so the total only goes up. A refusal is an error, not a failed `memory.grow`:
//! the call stops with a trap that says which limit was hit.

use wasmtime::ResourceLimiter;

/// Core instances a step may create (a Rust component uses a handful, Python a few dozen).
pub const MAX_INSTANCES: usize = 64;
/// Tables a step may create.
pub const MAX_TABLES: usize = 64;
/// Linear memories a step may create.
pub const MAX_MEMORIES: usize = 16;
/// Bytes a table element is charged: the largest element wasmtime stores (a continuation
/// reference is two words); funcref tables cost less, so this errs on the safe side.
pub const TABLE_ELEMENT_BYTES: usize = 16;

/// The limiter of one call's store.
#[derive(Debug)]
pub struct StepLimiter {
    limit: usize,
    used: usize,
}

/// The guest tried to grow its memories and tables past the step's limit.
#[derive(Debug, thiserror::Error)]
#[error(
    "growing a {what} would bring memories and tables to {wanted} bytes, over the limit of {limit}"
)]
pub struct OverLimit {
    /// `linear memory` or `table`.
    pub what: &'static str,
    /// The total the growth asked for.
    pub wanted: usize,
    /// The limit, in bytes.
    pub limit: usize,
}

impl StepLimiter {
    /// A limiter allowing `limit` bytes of memories and tables together.
    pub fn new(limit: usize) -> Self {
        Self { limit, used: 0 }
    }

    fn grow(&mut self, what: &'static str, more: usize) -> wasmtime::Result<bool> {
        let wanted = self.used.saturating_add(more);
        if wanted > self.limit {
            return Err(wasmtime::Error::new(OverLimit {
                what,
                wanted,
                limit: self.limit,
            }));
        }
        self.used = wanted;
        Ok(true)
    }
}

impl ResourceLimiter for StepLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grow("linear memory", desired.saturating_sub(current))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let elements = desired.saturating_sub(current);
        self.grow("table", elements.saturating_mul(TABLE_ELEMENT_BYTES))
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn memories_and_tables_share_one_budget() {
        let mut l = StepLimiter::new(1 << 20);
        assert!(l.memory_growing(0, 512 << 10, None).unwrap());
        // A second memory of the same size fits exactly; one more byte of anything does not.
        assert!(l.memory_growing(0, 512 << 10, None).unwrap());
        let err = l.table_growing(0, 1, None).unwrap_err();
        assert!(err.downcast_ref::<OverLimit>().is_some(), "{err}");
        let err = l
            .memory_growing(512 << 10, (512 << 10) + 1, None)
            .unwrap_err();
        assert_eq!(
            err.downcast_ref::<OverLimit>().unwrap().what,
            "linear memory"
        );
    }

    #[test]
    fn table_elements_are_charged() {
        let mut l = StepLimiter::new(1600);
        assert!(l.table_growing(0, 100, None).unwrap());
        assert!(l.table_growing(100, 101, None).is_err());
    }
}
