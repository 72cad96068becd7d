//! Background work a drill or a disturbance keeps doing while it lasts (traffic, a crash loop,
//! a busy script), held under its name so that stopping it, or starting it again, ends the old
//! one, and dropping the holder ends them all: nothing of a drill outlives it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use tokio::task::JoinHandle;

#[derive(Default)]
pub struct NamedTasks(Mutex<BTreeMap<String, JoinHandle<()>>>);

impl NamedTasks {
    /// Runs `task` under `name`, ending whatever ran under it before.
    pub fn keep(&self, name: &str, task: impl Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        if let Some(old) = self.lock().insert(name.to_string(), handle) {
            old.abort();
        }
    }

    /// Ends what runs under `name`; false when nothing did.
    pub fn stop(&self, name: &str) -> bool {
        self.lock().remove(name).map(|task| task.abort()).is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, JoinHandle<()>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for NamedTasks {
    fn drop(&mut self) {
        for task in self.0.get_mut().unwrap_or_else(|p| p.into_inner()).values() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_task_runs_until_stopped_replaced_or_dropped() {
        let ticks = Arc::new(AtomicU32::new(0));
        let counting = |ticks: Arc<AtomicU32>| async move {
            loop {
                ticks.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        };
        let tasks = NamedTasks::default();
        tasks.keep("traffic", counting(ticks.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(ticks.load(Ordering::SeqCst) > 0);
        assert!(tasks.stop("traffic"));
        assert!(!tasks.stop("traffic"), "nothing runs under it any more");
        tokio::task::yield_now().await;
        let after = ticks.load(Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(ticks.load(Ordering::SeqCst), after, "stopped means stopped");
        tasks.keep("traffic", counting(ticks.clone()));
        drop(tasks);
        tokio::task::yield_now().await;
        let after = ticks.load(Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert_eq!(ticks.load(Ordering::SeqCst), after, "dropping ends it too");
    }
}
