//! The operations budget of one run.
//!
//! Every evaluated statement and expression node costs one operation, which bounds loops.
//! Work proportional to data size (concatenating, splitting, joining, copying slices) costs
//! one more operation per `BULK_UNITS_PER_OPERATION` elements or bytes, which bounds the
//! memory a program can make: without it, `s = s + s` in a loop doubles a string for the
//! price of a few operations each time.

use crate::error::RuntimeError;

/// Elements or bytes of bulk work that cost one operation.
pub const BULK_UNITS_PER_OPERATION: usize = 256;

#[derive(Debug)]
pub struct Budget {
    used: u64,
    max: u64,
    /// Bulk units not yet worth a whole operation, so many small charges add up.
    bulk_units: usize,
}

impl Budget {
    pub fn new(max: u64) -> Budget {
        Budget {
            used: 0,
            max,
            bulk_units: 0,
        }
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    /// Spends one operation.
    pub fn tick(&mut self) -> Result<(), RuntimeError> {
        self.spend(1)
    }

    /// Spends the operations that `units` elements or bytes of bulk work cost.
    pub fn charge_bulk(&mut self, units: usize) -> Result<(), RuntimeError> {
        let units = self.bulk_units.saturating_add(units);
        self.bulk_units = units % BULK_UNITS_PER_OPERATION;
        let operations = units / BULK_UNITS_PER_OPERATION;
        self.spend(u64::try_from(operations).unwrap_or(u64::MAX))
    }

    fn spend(&mut self, operations: u64) -> Result<(), RuntimeError> {
        self.used = self.used.saturating_add(operations);
        if self.used > self.max {
            Err(RuntimeError::TooManyOperations)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_past_the_maximum() {
        let mut budget = Budget::new(3);
        for _ in 0..3 {
            budget.tick().unwrap();
        }
        assert_eq!(budget.tick(), Err(RuntimeError::TooManyOperations));
    }

    #[test]
    fn bulk_work_costs_by_size() {
        let mut budget = Budget::new(10);
        budget.charge_bulk(BULK_UNITS_PER_OPERATION - 1).unwrap();
        assert_eq!(budget.used(), 0);
        budget.charge_bulk(BULK_UNITS_PER_OPERATION * 9).unwrap();
        assert_eq!(budget.used(), 9);
        // Small charges add up.
        budget.charge_bulk(1).unwrap();
        assert_eq!(budget.used(), 10);
        assert!(budget.charge_bulk(usize::MAX).is_err());
    }
}
