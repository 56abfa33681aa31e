//! Prepares work items on several threads and hands them over in order, holding a bounded
//! number in flight: how training and evaluation rasterize batches ahead of the device.
//!
//! Worker `w` of `n` prepares items `w`, `w + n`, `w + 2n`, ... into its own bounded channel;
//! the consumer takes item `k` from worker `k % n`. The order, and so the result, never
//! depends on timing, and at most `n * (depth + 1)` items exist at once. Dropping the
//! iterator early (cancel, error) makes the workers' next send fail, so they stop.

use std::sync::mpsc::{self, Receiver};
use std::thread::Scope;

/// Items each worker may have ready before it waits for the consumer.
pub const DEPTH: usize = 2;

/// The items `0..count`, made by `make` on `workers` threads of `scope`, in order.
pub fn in_order<'scope, 'env, T, F>(
    scope: &'scope Scope<'scope, 'env>,
    count: usize,
    workers: usize,
    make: F,
) -> Ordered<T>
where
    T: Send + 'scope,
    F: Fn(usize) -> T + Send + Sync + 'scope,
{
    let workers = workers.clamp(1, count.max(1));
    let make = std::sync::Arc::new(make);
    let receivers = (0..workers)
        .map(|worker| {
            let (sender, receiver) = mpsc::sync_channel(DEPTH);
            let make = make.clone();
            scope.spawn(move || {
                for item in (worker..count).step_by(workers) {
                    if sender.send(make(item)).is_err() {
                        return; // the consumer stopped early
                    }
                }
            });
            receiver
        })
        .collect();
    Ordered {
        receivers,
        next: 0,
        count,
    }
}

/// The prepared items, in order; see [`in_order`].
pub struct Ordered<T> {
    /// One channel per worker.
    receivers: Vec<Receiver<T>>,
    /// The next item to hand over.
    next: usize,
    /// Items in all.
    count: usize,
}

impl<T> Iterator for Ordered<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.next >= self.count {
            return None;
        }
        let worker = self.next % self.receivers.len();
        self.next += 1;
        // A worker only hangs up early when `make` panicked; the scope re-raises that panic.
        self.receivers[worker].recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_arrive_in_order_whatever_the_number_of_workers() {
        for workers in [1, 2, 3, 8, 50] {
            let got: Vec<usize> =
                std::thread::scope(|s| in_order(s, 17, workers, |i| i * 10).collect());
            assert_eq!(got, (0..17).map(|i| i * 10).collect::<Vec<_>>());
        }
    }

    #[test]
    fn stopping_early_lets_the_workers_finish() {
        let first: Vec<usize> =
            std::thread::scope(|s| in_order(s, 1_000_000, 4, |i| i).take(3).collect());
        assert_eq!(first, vec![0, 1, 2]);
    }

    #[test]
    fn no_items_means_no_work() {
        let none: Vec<usize> = std::thread::scope(|s| in_order(s, 0, 4, |i| i).collect());
        assert!(none.is_empty());
    }
}
