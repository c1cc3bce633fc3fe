//! Bounded watch of one object until a condition holds. The watch stream stays open for the
//! whole bound and the deadline is checked on a 1 s tick, so a (virtual) clock that jumps ahead
//! while a request is in flight never cuts the watch short by more than one tick. On a quiet
//! tick the object is also read once (GET), so a watch that silently stalls or drops events
//! costs at most one second, not the whole bound.

use std::time::Duration;

use futures::StreamExt;
use kube::runtime::wait::Condition;
use kube::runtime::watcher::{self, watch_object};
use kube::Api;

/// Tick at which the deadline is checked.
const TICK: Duration = Duration::from_secs(1);

/// Watch `name` until `cond` holds (`Ok(Some(latest))`, `latest` = None when absent) or `bound`
/// passes (`Ok(None)`).
pub async fn wait_for<K, C>(
    api: Api<K>,
    name: &str,
    cond: C,
    bound: Duration,
) -> Result<Option<Option<K>>, watcher::Error>
where
    K: kube::Resource + Clone + std::fmt::Debug + Send + serde::de::DeserializeOwned + 'static,
    C: Condition<K>,
{
    let start = tokio::time::Instant::now();
    let mut stream = std::pin::pin!(watch_object(api.clone(), name));
    loop {
        let left = bound.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ok(None);
        }
        match tokio::time::timeout(left.min(TICK), stream.next()).await {
            Ok(Some(Ok(obj))) => {
                if cond.matches_object(obj.as_ref()) {
                    return Ok(Some(obj));
                }
            }
            Ok(Some(Err(e))) => {
                tracing::debug!("watch of {name}: {e} (retrying)");
            }
            Ok(None) => return Ok(None),
            Err(_) => match api.get_opt(name).await {
                Ok(obj) if cond.matches_object(obj.as_ref()) => return Ok(Some(obj)),
                Ok(_) => {}
                Err(e) => tracing::debug!("reading {name}: {e} (retrying)"),
            },
        }
    }
}
