//! The outbox over HTTP: the operators' list of an event's messages, and the public
//! availability stream (Server-Sent Events) that follows it.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::helpers::{Backend, Body, TestApp};

/// An open stream and what has arrived of it.
struct Stream {
    response: futures_util::stream::LocalBoxStream<
        'static,
        Result<actix_web::web::Bytes, awc::error::PayloadError>,
    >,
    buffer: String,
}

/// A frame: its `id`, `event` and `data` fields.
#[derive(Debug)]
struct Frame {
    id: i64,
    event: String,
    data: Value,
}

async fn open(app: &TestApp, event: i64, last: Option<&str>) -> Stream {
    let mut req = app
        .client
        .get(app.url(&format!("/api/events/{event}/stream")))
        .timeout(Duration::from_secs(3600));
    if let Some(last) = last {
        req = req.insert_header(("Last-Event-ID", last));
    }
    let response = req.send().await.expect("stream");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers().get("content-type").unwrap();
    assert_eq!(content_type.to_str().unwrap(), "text/event-stream");
    Stream {
        response: response.boxed_local(),
        buffer: String::new(),
    }
}

impl Stream {
    /// The next frame that is not a comment, if one arrives within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                if raw.starts_with(':') {
                    continue;
                }
                let field = |name: &str| {
                    raw.lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                        .unwrap_or_else(|| panic!("no {name} in {raw:?}"))
                        .to_owned()
                };
                return Some(Frame {
                    id: field("id").parse().unwrap(),
                    event: field("event"),
                    data: serde_json::from_str(&field("data")).unwrap(),
                });
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.next())
                .await
                .ok()??;
            self.buffer
                .push_str(std::str::from_utf8(&chunk.expect("chunk")).unwrap());
        }
    }

    /// Frames until one shows `available` tickets (each within `wait`).
    async fn until_available(&mut self, available: i64) -> Frame {
        loop {
            let frame = self
                .next(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("no frame with {available} available"));
            if frame.event == "availability" && frame.data["available"] == available {
                return frame;
            }
        }
    }
}

async fn messages(app: &TestApp, event: i64, query: &str) -> crate::helpers::Answer {
    let path = format!("/api/events/{event}/messages{query}");
    app.send(app.admin(app.client.get(app.url(&path))), Body::None)
        .await
}

pub async fn the_outbox_lists_each_change_in_order_for_operators_only(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(2).await;
    let hold = app.hold(event).await;
    app.purchase(&hold, Body::Json(json!({"payment_reference": "pay-9"})))
        .await
        .expect(200);
    let second = app.reserve(event).await.expect(201)["id"].clone();

    let all = messages(&app, event, "").await;
    let body = all.expect(200);
    assert_eq!(body["event_id"], event);
    assert_eq!(body["last_seq"], 4);
    let listed: Vec<(i64, &str, Value)> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["seq"].as_i64().unwrap(),
                m["type"].as_str().unwrap(),
                m["reservation_id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            (1, "reservation.created", json!(hold)),
            (2, "reservation.purchased", json!(hold)),
            (3, "reservation.created", second.clone()),
            (4, "event.sold_out", Value::Null),
        ]
    );
    assert!(
        !all.raw.contains("pay-9"),
        "no payment reference in messages"
    );

    let page = messages(&app, event, "?after=2&limit=1").await;
    let page = page.expect(200);
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    assert_eq!(page["messages"][0]["seq"], 3);
    assert_eq!(page["last_seq"], 4);

    messages(&app, event, "?limit=0")
        .await
        .expect_validation(&["limit"]);
    messages(&app, event, "?after=-3")
        .await
        .expect_validation(&["after"]);
    messages(&app, 999_999, "")
        .await
        .expect_error(404, "not_found");
    let stranger = app.get(&format!("/api/events/{event}/messages")).await;
    stranger.expect_error(401, "unauthorized");
}

pub async fn the_stream_sends_availability_at_once_and_after_every_change(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(3).await;
    let mut watcher = open(&app, event, None).await;
    let first = watcher
        .next(Duration::from_secs(10))
        .await
        .expect("a frame at once");
    assert_eq!((first.id, first.event.as_str()), (0, "availability"));
    assert_eq!(first.data["available"], 3);
    assert_eq!(first.data["id"], event);

    let hold = app.hold(event).await;
    let after_hold = watcher.until_available(2).await;
    assert_eq!(after_hold.id, 1);
    // A second watcher shares the frames; one who saw an old frame gets the current one.
    let mut late = open(&app, event, Some("0")).await;
    assert_eq!(late.until_available(2).await.id, 1);
    // One who saw the current frame gets nothing until the next change.
    let mut current = open(&app, event, Some("1")).await;
    assert!(current.next(Duration::from_millis(600)).await.is_none());

    app.reserve_with(event, json!({"quantity": 2}))
        .await
        .expect(201);
    let sold_out = watcher.until_available(0).await;
    assert_eq!(sold_out.id, 3, "created and sold_out");
    assert_eq!(current.until_available(0).await.id, 3);
    assert_eq!(late.until_available(0).await.id, 3);

    app.cancel(&hold).await.expect(200);
    let freed = watcher.until_available(1).await;
    assert_eq!(freed.id, 4);
    assert_eq!(freed.data["reserved"], 2);
}

pub async fn the_stream_of_an_unknown_event_answers_404(backend: Backend) {
    let app = TestApp::spawn(backend);
    app.get("/api/events/999999/stream")
        .await
        .expect_error(404, "not_found");
    app.get("/api/events/nope/stream")
        .await
        .expect_error(404, "not_found");
}

pub async fn a_seated_events_stream_names_the_seats_that_changed(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    let plan = json!({"sections": [{"name": "A", "rows": [{"name": "1", "seats": 4}]}]});
    let path = format!("/api/events/{event}/seats");
    app.send(app.admin(app.client.put(app.url(&path))), Body::Json(plan))
        .await
        .expect(200);
    let mut watcher = open(&app, event, None).await;
    let first = watcher
        .next(Duration::from_secs(10))
        .await
        .expect("a frame at once");
    assert_eq!(
        (first.id, first.event.as_str()),
        (1, "availability"),
        "event.updated"
    );
    assert_eq!(first.data["available"], 4);

    let hold = app
        .reserve_with(event, json!({"seats": ["A-1-2", "A-1-3"]}))
        .await;
    let hold = hold.expect(201)["id"].as_str().unwrap().to_owned();
    let seats = watcher.next(Duration::from_secs(10)).await.expect("seats");
    assert_eq!((seats.id, seats.event.as_str()), (2, "seats"));
    assert_eq!(seats.data["seats"], json!({"A-1-2": "H", "A-1-3": "H"}));
    let map = app.get(&path).await;
    assert_eq!(seats.data["version"], map.expect(200)["version"]);
    let after = watcher
        .next(Duration::from_secs(10))
        .await
        .expect("availability");
    assert_eq!((after.id, after.event.as_str()), (2, "availability"));
    assert_eq!(after.data["available"], 2);

    app.purchase(&hold, Body::None).await.expect(200);
    let sold = watcher.next(Duration::from_secs(10)).await.expect("seats");
    assert_eq!(sold.event, "seats");
    assert_eq!(sold.data["seats"], json!({"A-1-2": "S", "A-1-3": "S"}));
}
