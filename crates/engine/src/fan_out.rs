//! The shape every writing phase shares: work over a list, a few items at a time, with a
//! running count for the progress bar.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::StreamExt;

/// Runs `work` on each item, at most `limit` at once, and after each calls `finished` with the
/// total `weight` of the items finished so far (a batch weighs its users). Outputs come in
/// completion order.
pub(crate) async fn fan_out<I, O, Fut>(
    items: Vec<I>,
    limit: usize,
    weight: impl Fn(&I) -> usize,
    finished: impl Fn(usize),
    work: impl Fn(I) -> Fut,
) -> Vec<O>
where
    Fut: Future<Output = O>,
{
    let done = AtomicUsize::new(0);
    let (done, finished) = (&done, &finished);
    futures::stream::iter(items)
        .map(|item| {
            let weight = weight(&item);
            let running = work(item);
            async move {
                let output = running.await;
                finished(done.fetch_add(weight, Ordering::Relaxed) + weight);
                output
            }
        })
        .buffer_unordered(limit.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_item_runs_once_and_the_count_reaches_the_total_weight() {
        let seen = std::sync::Mutex::new(Vec::new());
        let outputs = fan_out(
            vec![vec![1, 2], vec![3], vec![4, 5, 6]],
            2,
            Vec::len,
            |done| seen.lock().expect("not poisoned").push(done),
            |batch| async move { batch.iter().sum::<i32>() },
        )
        .await;
        let mut sorted = outputs.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![3, 3, 15]);
        let seen = seen.into_inner().expect("not poisoned");
        assert_eq!(seen.len(), 3);
        assert_eq!(seen.last(), Some(&6), "the last report is the whole weight");
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
    }
}
