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

/// Server-side timeout of one watch request: short enough that a silently dropped connection is
/// noticed, long enough not to matter.
const WATCH_SECONDS: u32 = 60;

/// Waits until `name` satisfies `done`, watching it. `Ok(None)` when `deadline` passed first
/// (with the last version seen, if any, in the error-free case the caller reports).
///
/// # Errors
/// The object cannot be read or watched (missing, forbidden, unreachable server).
pub async fn until<F>(
    api: &Api<DynamicObject>,
    name: &str,
    deadline: Instant,
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
            .timeout(timeout_secs(remaining));
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

fn timeout_secs(remaining: Duration) -> u32 {
    let secs = remaining.as_secs().saturating_add(1);
    u32::try_from(secs).unwrap_or(u32::MAX).min(WATCH_SECONDS)
}

fn not_found(name: &str) -> kube::core::Status {
    kube::core::Status::failure(
        &format!("{name} was deleted while kstep waited for it"),
        "NotFound",
    )
    .with_code(404)
}

enum State {
    List,
    Watch(String),
    Watching(
        std::pin::Pin<Box<dyn Stream<Item = kube::Result<WatchEvent<DynamicObject>>> + Send>>,
        String,
    ),
    Done,
}

/// Every object of `api`'s resource matching `selector` (a label selector, or none), as
/// changes: first a [`Change::Reset`] with the current list, then each change as it happens.
/// The stream ends only after an error, which it yields last.
pub fn collection(
    api: Api<DynamicObject>,
    labels: Option<String>,
) -> impl Stream<Item = Result<Change, kube::Error>> + Send {
    futures::stream::unfold(
        (api, labels, State::List),
        |(api, labels, state)| async move {
            let mut state = state;
            loop {
                match state {
                    State::Done => return None,
                    State::List => {
                        let mut params = ListParams::default();
                        if let Some(l) = &labels {
                            params = params.labels(l);
                        }
                        match api.list(&params).await {
                            Ok(list) => {
                                let version =
                                    list.metadata.resource_version.clone().unwrap_or_default();
                                return Some((
                                    Ok(Change::Reset(list.items)),
                                    (api, labels, State::Watch(version)),
                                ));
                            }
                            Err(e) => return Some((Err(e), (api, labels, State::Done))),
                        }
                    }
                    State::Watch(version) => {
                        let mut params = WatchParams::default().timeout(WATCH_SECONDS);
                        if let Some(l) = &labels {
                            params = params.labels(l);
                        }
                        match api.watch(&params, &version).await {
                            Ok(stream) => state = State::Watching(stream.boxed(), version),
                            Err(e) if super::api_error::code(&e) == Some(410) => {
                                state = State::List;
                            }
                            Err(e) => return Some((Err(e), (api, labels, State::Done))),
                        }
                    }
                    State::Watching(mut stream, version) => match stream.next().await {
                        None => state = State::Watch(version),
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
                                    state = State::Watching(stream, b.metadata.resource_version);
                                    continue;
                                }
                                WatchEvent::Error(status) if status.code == 410 => {
                                    state = State::List;
                                    continue;
                                }
                                WatchEvent::Error(status) => {
                                    return Some((
                                        Err(kube::Error::Api(status)),
                                        (api, labels, State::Done),
                                    ));
                                }
                            };
                            return Some((
                                Ok(change),
                                (api, labels, State::Watching(stream, version)),
                            ));
                        }
                        Some(Err(e)) => return Some((Err(e), (api, labels, State::Done))),
                    },
                }
            }
        },
    )
}
