//! `GET /api/events/{event}/stream`: an event's availability as Server-Sent Events.
//!
//! One poller per instance asks the store, a few times a second, for the last outbox number
//! of every event someone here is watching (one statement for all of them). For each event
//! whose number moved it reads the summary once and sends the same frame to every subscriber
//! of that event, so a thousand watchers cost what one does, and changes made through any
//! other instance arrive too: they are in the same outbox. Each subscriber has a small buffer;
//! one that falls that far behind is dropped (its browser reconnects with `Last-Event-ID`)
//! rather than buffered without end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use domain::{EventId, SeatMapView, Ticketing};
use tokio::sync::{mpsc, Notify};

use crate::dto::EventBody;
use crate::error::ApiError;
use crate::params::EventPath;
use crate::state::AppState;

/// Frames a subscriber may be behind before it is dropped.
const BUFFER: usize = 16;
/// How often the poller asks the store whether anything happened.
const POLL: Duration = Duration::from_millis(100);
/// How often an idle stream gets a comment line, so proxies keep it open.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// The streams of this instance.
#[derive(Debug)]
pub struct Streams {
    topics: Mutex<HashMap<EventId, Topic>>,
    /// Rings when an event gets its first subscriber, so it is read at once.
    wake: Notify,
    max_subscribers: usize,
}

#[derive(Debug, Default)]
struct Topic {
    /// The outbox number the last frame was sent for (`None`: not read yet).
    head: Option<i64>,
    /// The last frame, for those who subscribe between two changes.
    last: Option<Bytes>,
    /// On a seated event, each seat's status letter as last sent (by seat number - 1).
    seats: Option<Vec<char>>,
    subscribers: Vec<mpsc::Sender<Bytes>>,
}

impl Streams {
    /// No streams, at most `max_subscribers` at once.
    pub fn new(max_subscribers: usize) -> Self {
        Self {
            topics: Mutex::default(),
            wake: Notify::new(),
            max_subscribers,
        }
    }

    fn topics(&self) -> std::sync::MutexGuard<'_, HashMap<EventId, Topic>> {
        self.topics.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many streams are open.
    pub fn subscribers(&self) -> usize {
        self.topics().values().map(|t| t.subscribers.len()).sum()
    }

    /// A new subscriber of `event` who last saw `seen`; `None` when the instance has as many
    /// as it takes.
    fn subscribe(&self, event: EventId, seen: Option<i64>) -> Option<mpsc::Receiver<Bytes>> {
        let (tx, rx) = mpsc::channel(BUFFER);
        let mut topics = self.topics();
        if topics.values().map(|t| t.subscribers.len()).sum::<usize>() >= self.max_subscribers {
            return None;
        }
        let topic = topics.entry(event).or_default();
        match (&topic.last, topic.head) {
            (Some(frame), Some(head)) if seen != Some(head) => {
                let _ = tx.try_send(frame.clone());
            }
            (None, _) => self.wake.notify_one(),
            _ => {}
        }
        topic.subscribers.push(tx);
        Some(rx)
    }

    /// The watched events and the numbers their last frames were sent for; forgets events
    /// nobody watches any more.
    fn watched(&self) -> Vec<(EventId, Option<i64>)> {
        let mut topics = self.topics();
        topics.retain(|_, t| {
            t.subscribers.retain(|s| !s.is_closed());
            !t.subscribers.is_empty()
        });
        topics.iter().map(|(id, t)| (*id, t.head)).collect()
    }

    /// Sends `frame` (for outbox number `head`) to every subscriber of `event`, after the
    /// `event: seats` frame of what changed on its seat map if it has one; drops those whose
    /// buffer is full.
    fn publish(&self, event: EventId, head: i64, frame: &Bytes, map: Option<&SeatMapView>) {
        let mut topics = self.topics();
        if let Some(topic) = topics.get_mut(&event) {
            topic.head = Some(head);
            topic.last = Some(frame.clone());
            let seats = map.and_then(|view| seat_frame(head, view, &mut topic.seats));
            topic.subscribers.retain(|s| {
                seats.as_ref().is_none_or(|f| s.try_send(f.clone()).is_ok())
                    && s.try_send(frame.clone()).is_ok()
            });
        }
    }

    /// A comment line to every subscriber.
    fn heartbeat(&self) {
        let beat = Bytes::from_static(b": keep-alive\n\n");
        for topic in self.topics().values_mut() {
            topic
                .subscribers
                .retain(|s| s.try_send(beat.clone()).is_ok());
        }
    }

    /// Ends every stream (shutdown).
    fn close_all(&self) {
        self.topics().clear();
    }
}

/// The frame of `body` at outbox number `head`.
fn frame(head: i64, body: &EventBody) -> Bytes {
    let data = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!("id: {head}\nevent: availability\ndata: {data}\n\n"))
}

/// The `event: seats` frame of the seats of `view` whose status differs from `sent`, with the
/// map's version; `None` when none changed or nothing was sent before (a page reads the whole
/// map with `GET .../seats`, then applies these). `sent` becomes what `view` shows.
fn seat_frame(head: i64, view: &SeatMapView, sent: &mut Option<Vec<char>>) -> Option<Bytes> {
    let now: Vec<char> = view
        .map
        .statuses(view.now)
        .into_iter()
        .map(domain::SeatStatus::letter)
        .collect();
    let before = sent.replace(now.clone())?;
    let plan = view.map.plan();
    let mut changed = serde_json::Map::new();
    for (i, letter) in now.iter().enumerate() {
        if before.get(i) != Some(letter) {
            let number = domain::SeatId::new(i64::try_from(i).unwrap_or(i64::MAX) + 1);
            if let Some(label) = plan.label(number) {
                changed.insert(label, letter.to_string().into());
            }
        }
    }
    if changed.is_empty() {
        return None;
    }
    let data = serde_json::json!({"version": view.version, "seats": changed});
    Some(Bytes::from(format!(
        "id: {head}\nevent: seats\ndata: {data}\n\n"
    )))
}

/// Polls the store for the watched events until `draining`, then ends every stream.
pub async fn poll(streams: Arc<Streams>, ticketing: Ticketing, draining: Arc<AtomicBool>) {
    let mut beat = Instant::now();
    loop {
        let _ = tokio::time::timeout(POLL, streams.wake.notified()).await;
        if draining.load(Ordering::Acquire) {
            streams.close_all();
            return;
        }
        if beat.elapsed() >= HEARTBEAT {
            streams.heartbeat();
            beat = Instant::now();
        }
        let watched = streams.watched();
        if watched.is_empty() {
            continue;
        }
        let ids: Vec<EventId> = watched.iter().map(|(id, _)| *id).collect();
        let t = ticketing.clone();
        let heads = match web::block(move || t.message_heads(&ids)).await {
            Ok(Ok(heads)) => heads,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "stream poll failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(_) => return,
        };
        let changed: Vec<(EventId, i64)> = heads
            .into_iter()
            .filter(|(id, head)| {
                watched
                    .iter()
                    .any(|(w, sent)| w == id && *sent != Some(*head))
            })
            .collect();
        if changed.is_empty() {
            continue;
        }
        let ids: Vec<EventId> = changed.iter().map(|(id, _)| *id).collect();
        let t = ticketing.clone();
        let summaries = match web::block(move || t.event_summaries(&ids)).await {
            Ok(Ok(summaries)) => summaries,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "stream read failed; retrying");
                continue;
            }
            Err(_) => return,
        };
        let ids: Vec<EventId> = changed.iter().map(|(id, _)| *id).collect();
        let t = ticketing.clone();
        // Only seated events have maps; the others are left out.
        let maps = match web::block(move || t.seat_maps(&ids)).await {
            Ok(Ok(maps)) => maps,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "stream seat read failed; retrying");
                continue;
            }
            Err(_) => return,
        };
        for summary in summaries {
            let id = summary.event.id;
            if let Some((_, head)) = changed.iter().find(|(e, _)| *e == id) {
                let map = maps.iter().find(|m| m.event == id);
                streams.publish(id, *head, &frame(*head, &EventBody::from(summary)), map);
            }
        }
    }
}

/// An event's availability as it changes: `event: availability` frames whose `data` is the
/// event's body and whose `id` is the number of the last outbox message it reflects; on a
/// seated event, each change's is preceded by an `event: seats` frame of the seats whose status
/// changed (`{"version", "seats": {"A-1-3": "H", ...}}`), to apply to the map read with
/// `GET /api/events/{event}/seats`.
#[utoipa::path(
    get,
    path = "/api/events/{event}/stream",
    operation_id = "streamEvent",
    tag = "events",
    params(EventPath,
        ("Last-Event-ID" = Option<i64>, Header,
            description = "The `id` of the last frame seen: no frame is sent until something changes after it.")),
    responses(
        (status = 200, description = "Server-Sent Events: the current availability at once (unless `Last-Event-ID` is current), then after each change; a comment line every 15 s.",
            content_type = "text/event-stream", body = String),
    ),
)]
pub(crate) async fn stream(
    state: web::Data<AppState>,
    path: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id: EventId = path.parse().map_err(|_| ApiError::NotFound)?;
    // Unknown events are told so, not streamed silence.
    crate::reads::read(&state, &state.event_reads, id).await?;
    let seen = request
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let rx = state
        .streams
        .subscribe(id, seen)
        .ok_or(ApiError::Unavailable)?;
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|frame| (Ok::<_, actix_web::Error>(frame), rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // Tells nginx not to buffer the stream.
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body))
}
