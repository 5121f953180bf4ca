//! Watching the API server instead of polling it.
//!
//! - [`until`]: one object, until a condition holds or a deadline passes (a CRD becoming
//!   Established, a token Secret being filled);
//! - [`collection`]: every object of one resource in one namespace as a stream of changes, list
//!   first, then watch from the list's resourceVersion, re-watching when the server ends a watch
//!   and re-listing when the version is too old (410 Gone). This is what kube-runtime's watcher
//!   does, in the small: kstep does not pull in kube-runtime for it.

use std::time::Duration;

use futures::{Stream, StreamExt as _};
use kube::Api;
use kube::api::{DynamicObject, ListParams, WatchEvent, WatchParams};
use tokio::time::Instant;

/// A change in a watched collection.
#[derive(Debug, Clone)]
pub enum Change {
    /// The whole collection, after a (re)list: replaces what was known.
    Reset(Vec<DynamicObject>),
    /// An object was added or modified.
    Applied(DynamicObject),
    /// An object was deleted.
    Deleted(DynamicObject),
}

/// The longest watch request: a silently dropped connection is noticed within this.
const MAX_WATCH_SECONDS: u32 = 290;

/// Waits until `name` satisfies `done`, watching it. `Ok(None)` when `deadline` passed first
/// (with the last version seen, if any, in the error-free case the caller reports).
///
/// # Errors
/// The object cannot be read or watched (missing, forbidden, unreachable server).
pub async fn until<F>(
    api: &Api<DynamicObject>,
    name: &str,
    deadline: Instant,
    watch_timeout: Duration,
    mut done: F,
) -> Result<Result<DynamicObject, Option<DynamicObject>>, kube::Error>
where
    F: FnMut(&DynamicObject) -> bool,
{
    let mut last = api.get(name).await?;
    if done(&last) {
        return Ok(Ok(last));
    }
    let selector = format!("metadata.name={name}");
    loop {
        let version = last.metadata.resource_version.clone().unwrap_or_default();
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(Err(Some(last)));
        }
        let params = WatchParams::default()
            .fields(&selector)
            .timeout(timeout_secs(remaining.min(watch_timeout)));
        let stream = api.watch(&params, &version).await?;
        let mut stream = std::pin::pin!(stream);
        loop {
            let next = tokio::time::timeout_at(deadline, stream.next()).await;
            let Ok(next) = next else {
                return Ok(Err(Some(last)));
            };
            match next {
                None => break,
                Some(Err(e)) => return Err(e),
                Some(Ok(WatchEvent::Added(o) | WatchEvent::Modified(o))) => {
                    if done(&o) {
                        return Ok(Ok(o));
                    }
                    last = o;
                }
                Some(Ok(WatchEvent::Deleted(_))) => {
                    return Err(kube::Error::Api(Box::new(not_found(name))));
                }
                Some(Ok(WatchEvent::Bookmark(b))) => {
                    last.metadata.resource_version = Some(b.metadata.resource_version);
                }
                Some(Ok(WatchEvent::Error(status))) if status.code == 410 => {
                    last = api.get(name).await?;
                    if done(&last) {
                        return Ok(Ok(last));
                    }
                    break;
                }
                Some(Ok(WatchEvent::Error(status))) => return Err(kube::Error::Api(status)),
            }
        }
    }
}

/// Whole seconds for a watch's `timeoutSeconds`: at least 1, at most [`MAX_WATCH_SECONDS`].
fn timeout_secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs())
        .unwrap_or(u32::MAX)
        .clamp(1, MAX_WATCH_SECONDS)
}

/// The watch timeout for a client whose read timeout is `read_timeout`: a few seconds less, so
/// the server ends an idle watch before the client takes it for a dead connection.
pub fn timeout_for(read_timeout: Duration) -> Duration {
    read_timeout
        .saturating_sub(Duration::from_secs(5))
        .max(read_timeout / 2)
        .max(Duration::from_secs(1))
}

fn not_found(name: &str) -> kube::core::Status {
    kube::core::Status::failure(
        &format!("{name} was deleted while kstep waited for it"),
        "NotFound",
    )
    .with_code(404)
}

/// How often in a row a watch may fail to start or break off (a transport error, a watch the
/// server ends at once) before the stream gives up with the error.
const MAX_RETRIES: u32 = 3;

type EventStream =
    std::pin::Pin<Box<dyn Stream<Item = kube::Result<WatchEvent<DynamicObject>>> + Send>>;

enum State {
    List,
    Watch(String),
    Watching(EventStream, String, Instant),
    Done,
}

struct Collection {
    api: Api<DynamicObject>,
    labels: Option<String>,
    watch_seconds: u32,
    /// Consecutive failures.
    failures: u32,
}

impl Collection {
    /// Counts a failure: `Err` to give up, `Ok` after a short backoff to try again.
    async fn retry(&mut self, error: kube::Error) -> Result<(), kube::Error> {
        // Answers from the server (forbidden, gone…) are not transient.
        if matches!(error, kube::Error::Api(_)) || self.failures >= MAX_RETRIES {
            return Err(error);
        }
        self.failures += 1;
        tokio::time::sleep(Duration::from_millis(200) * self.failures).await;
        Ok(())
    }
}

/// Every object of `api`'s resource (matching the label selector `labels`, if any), as
/// changes: first a [`Change::Reset`] with the current list, then each change as it happens.
///
/// `watch_timeout` bounds each watch request; it must be shorter than the client's read
/// timeout, or an idle watch would be cut off as a dead connection. The stream ends only after
/// an error, which it yields last.
pub fn collection(
    api: Api<DynamicObject>,
    labels: Option<String>,
    watch_timeout: Duration,
) -> impl Stream<Item = Result<Change, kube::Error>> + Send {
    let context = Collection {
        api,
        labels,
        watch_seconds: timeout_secs(watch_timeout),
        failures: 0,
    };
    futures::stream::unfold((context, State::List), |(mut cx, state)| async move {
        let mut state = state;
        loop {
            match state {
                State::Done => return None,
                State::List => {
                    let mut params = ListParams::default();
                    if let Some(l) = &cx.labels {
                        params = params.labels(l);
                    }
                    match cx.api.list(&params).await {
                        Ok(list) => {
                            let version =
                                list.metadata.resource_version.clone().unwrap_or_default();
                            return Some((
                                Ok(Change::Reset(list.items)),
                                (cx, State::Watch(version)),
                            ));
                        }
                        Err(e) => match cx.retry(e).await {
                            Ok(()) => state = State::List,
                            Err(e) => return Some((Err(e), (cx, State::Done))),
                        },
                    }
                }
                State::Watch(version) => {
                    let mut params = WatchParams::default().timeout(cx.watch_seconds);
                    if let Some(l) = &cx.labels {
                        params = params.labels(l);
                    }
                    match cx.api.watch(&params, &version).await {
                        Ok(stream) => {
                            state = State::Watching(stream.boxed(), version, Instant::now())
                        }
                        Err(e) if super::api_error::code(&e) == Some(410) => state = State::List,
                        Err(e) => match cx.retry(e).await {
                            Ok(()) => state = State::Watch(version),
                            Err(e) => return Some((Err(e), (cx, State::Done))),
                        },
                    }
                }
                State::Watching(mut stream, version, started) => match stream.next().await {
                    None => {
                        // The server ends each watch after `watch_seconds`; one that ends at once
                        // is a failure, or this would spin.
                        if started.elapsed() < Duration::from_secs(1) {
                            let e = kube::Error::Service("the watch ended at once".into());
                            if let Err(e) = cx.retry(e).await {
                                return Some((Err(e), (cx, State::Done)));
                            }
                        }
                        state = State::Watch(version);
                    }
                    Some(Ok(event)) => {
                        let (change, version) = match event {
                            WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                                let v = o.metadata.resource_version.clone().unwrap_or(version);
                                (Change::Applied(o), v)
                            }
                            WatchEvent::Deleted(o) => {
                                let v = o.metadata.resource_version.clone().unwrap_or(version);
                                (Change::Deleted(o), v)
                            }
                            WatchEvent::Bookmark(b) => {
                                state =
                                    State::Watching(stream, b.metadata.resource_version, started);
                                continue;
                            }
                            WatchEvent::Error(status) if status.code == 410 => {
                                state = State::List;
                                continue;
                            }
                            WatchEvent::Error(status) => {
                                return Some((Err(kube::Error::Api(status)), (cx, State::Done)));
                            }
                        };
                        cx.failures = 0;
                        return Some((Ok(change), (cx, State::Watching(stream, version, started))));
                    }
                    Some(Err(e)) => match cx.retry(e).await {
                        Ok(()) => state = State::Watch(version),
                        Err(e) => return Some((Err(e), (cx, State::Done))),
                    },
                },
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_end_before_the_read_timeout() {
        assert_eq!(
            timeout_for(Duration::from_secs(30)),
            Duration::from_secs(25)
        );
        assert_eq!(timeout_for(Duration::from_secs(4)), Duration::from_secs(2));
        assert_eq!(
            timeout_for(Duration::from_millis(500)),
            Duration::from_secs(1)
        );
        assert_eq!(timeout_secs(Duration::from_millis(300)), 1);
        assert_eq!(timeout_secs(Duration::from_secs(10_000)), 290);
    }
}
