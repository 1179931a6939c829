//! Assigned seating over HTTP: loading a plan, the seat map with its `ETag`, 304 and gzip, seat
//! holds by label and best available, releases, and the errors of each.

use std::io::Read;

use serde_json::{json, Value};

use crate::helpers::{Backend, Body, TestApp};

async fn put_plan(app: &TestApp, event: i64, plan: Value) -> crate::helpers::Answer {
    let path = format!("/api/events/{event}/seats");
    app.send(app.admin(app.client.put(app.url(&path))), Body::Json(plan))
        .await
}

/// Rows `1` and `2` of section `A`, 4 seats each.
async fn seated(app: &TestApp) -> i64 {
    let event = app.create_event(1).await;
    let plan = json!({"sections": [{"name": "A", "rows": [
        {"name": "1", "seats": 4}, {"name": "2", "seats": ["a", "b", "c", "d"]}
    ]}]});
    put_plan(app, event, plan).await.expect(200);
    event
}

fn statuses(map: &Value) -> Vec<String> {
    map["sections"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect()
}

/// A GET of the seat map with these headers: status, `ETag`, and the body's bytes as sent.
async fn raw_map(
    app: &TestApp,
    event: i64,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<u8>, Option<String>) {
    let mut req = app
        .client
        .get(app.url(&format!("/api/events/{event}/seats")));
    for (name, value) in headers {
        req = req.insert_header((*name, *value));
    }
    let mut res = req.send().await.expect("request");
    let etag = res
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let encoding = res
        .headers()
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = res.body().limit(1 << 22).await.expect("body").to_vec();
    (res.status().as_u16(), etag, body, encoding)
}

pub async fn a_plan_loads_and_the_seat_map_reads_with_an_etag_304_and_gzip(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = seated(&app).await;
    let map = app.get(&format!("/api/events/{event}/seats")).await;
    let body = map.expect(200).clone();
    assert_eq!(statuses(&body), vec!["FFFF", "FFFF"]);
    assert_eq!(
        body["sections"][0]["rows"][1]["labels"],
        json!(["a", "b", "c", "d"])
    );
    let etag = map.header("etag").unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", body["version"]));
    assert_eq!(app.event(event).await["capacity"], 8);

    let (status, again, bytes, _) = raw_map(&app, event, &[("If-None-Match", &etag)]).await;
    assert_eq!(
        (status, again.as_str(), bytes.len()),
        (304, etag.as_str(), 0)
    );

    let (status, _, bytes, encoding) = raw_map(&app, event, &[("Accept-Encoding", "gzip")]).await;
    assert_eq!((status, encoding.as_deref()), (200, Some("gzip")));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), body);

    // A hold changes the map: a new version, and the old ETag no longer matches.
    app.reserve_with(event, json!({"seats": ["A-1-2"]}))
        .await
        .expect(201);
    let (status, newer, bytes, _) = raw_map(&app, event, &[("If-None-Match", &etag)]).await;
    assert_eq!(status, 200);
    assert_ne!(newer, etag);
    let changed: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(statuses(&changed), vec!["FHFF", "FFFF"]);
}

pub async fn seats_are_held_by_label_or_best_available_and_a_taken_seat_is_named(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = seated(&app).await;
    let hold = app
        .reserve_with(
            event,
            json!({"seats": ["A-1-1", "A-1-2"], "customer": "c1"}),
        )
        .await;
    let body = hold.expect(201).clone();
    assert_eq!(body["seats"], json!(["A-1-1", "A-1-2"]));
    assert_eq!(body["quantity"], 2);
    let taken = app
        .reserve_with(event, json!({"seats": ["A-1-2", "A-1-3"]}))
        .await;
    taken.expect_error(409, "seat_unavailable");
    assert_eq!(taken.body["seats"], json!(["A-1-2"]));
    let best = app
        .reserve_with(event, json!({"best_available": {"quantity": 2}}))
        .await;
    // Row 1 has 3-4 left, together: the best block.
    assert_eq!(best.expect(201)["seats"], json!(["A-1-3", "A-1-4"]));
    app.reserve_with(event, json!({"best_available": {"quantity": 5}}))
        .await
        .expect_error(409, "sold_out");
    let id = body["id"].as_str().unwrap();
    let read = app.get(&format!("/api/reservations/{id}")).await;
    assert_eq!(read.expect(200)["seats"], json!(["A-1-1", "A-1-2"]));
    let map = app.get(&format!("/api/events/{event}/seats")).await;
    assert_eq!(statuses(map.expect(200)), vec!["HHHH", "FFFF"]);
}

pub async fn seated_reserves_and_releases_refuse_what_does_not_fit_on_their_fields(
    backend: Backend,
) {
    let app = TestApp::spawn(backend);
    let event = seated(&app).await;
    app.reserve_with(event, json!({"quantity": 1}))
        .await
        .expect_validation(&["seats"]);
    app.reserve_with(event, json!({"seats": ["A-9-9"]}))
        .await
        .expect_validation(&["seats"]);
    app.reserve_with(event, json!({"seats": ["A-1-1"], "quantity": 1}))
        .await
        .expect_validation(&["seats"]);
    app.reserve_with(event, json!({"best_available": {"quantity": 0}}))
        .await
        .expect_validation(&["best_available"]);
    let plain = app.create_event(5).await;
    app.reserve_with(plain, json!({"seats": ["A-1-1"]}))
        .await
        .expect_validation(&["seats"]);
    let hold = app
        .reserve_with(event, json!({"seats": ["A-2-a", "A-2-b"]}))
        .await;
    let id = hold.expect(201)["id"].as_str().unwrap().to_owned();
    let release = |body: Value| {
        let app = &app;
        let id = id.clone();
        async move {
            app.post(&format!("/api/reservations/{id}/release"), Body::Json(body))
                .await
        }
    };
    release(json!({"seats": ["A-2-a", "A-2-b"]}))
        .await
        .expect_validation(&["seats"]);
    release(json!({"quantity": 1}))
        .await
        .expect_validation(&["seats"]);
    let left = release(json!({"seats": ["A-2-b"]})).await;
    assert_eq!(left.expect(200)["seats"], json!(["A-2-a"]));
    let map = app.get(&format!("/api/events/{event}/seats")).await;
    assert_eq!(statuses(map.expect(200)), vec!["FFFF", "HFFF"]);
}

pub async fn a_plan_is_for_operators_checked_and_locked_once_a_seat_is_held(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    let path = format!("/api/events/{event}/seats");
    let plan = json!({"sections": [{"name": "A", "rows": [{"name": "1", "seats": 2}]}]});
    app.send(app.client.put(app.url(&path)), Body::Json(plan.clone()))
        .await
        .expect_error(401, "unauthorized");
    put_plan(
        &app,
        event,
        json!({"sections": [{"name": "A-B", "rows": [{"name": "1", "seats": 2}]}]}),
    )
    .await
    .expect_validation(&["sections"]);
    put_plan(&app, event, json!({"sections": "none"}))
        .await
        .expect_validation(&["sections"]);
    put_plan(&app, 987_654, plan.clone())
        .await
        .expect_error(404, "not_found");
    app.get("/api/events/987654/seats")
        .await
        .expect_error(404, "not_found");
    let unseated = app.create_event(3).await;
    app.get(&format!("/api/events/{unseated}/seats"))
        .await
        .expect_error(404, "not_found");
    put_plan(&app, event, plan.clone()).await.expect(200);
    app.reserve_with(event, json!({"seats": ["A-1-1"]}))
        .await
        .expect(201);
    put_plan(&app, event, plan)
        .await
        .expect_error(409, "seating_locked");
    let resized = app
        .send(
            app.admin(app.client.patch(app.url(&format!("/api/events/{event}")))),
            Body::Json(json!({"capacity": 10})),
        )
        .await;
    resized.expect_validation(&["capacity"]);
}

pub async fn the_seat_map_page_and_its_files_come_from_the_binary(backend: Backend) {
    let app = TestApp::spawn(backend);
    let event = seated(&app).await;
    for (path, kind, needle) in [
        (
            format!("/events/{event}/seatmap"),
            "text/html",
            "/seatmap/seatmap.js",
        ),
        (
            "/seatmap/seatmap.js".to_owned(),
            "text/javascript",
            "If-None-Match",
        ),
        ("/seatmap/seatmap.css".to_owned(), "text/css", ".seat"),
    ] {
        let mut res = app
            .client
            .get(app.url(&path))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status().as_u16(), 200, "{path}");
        let content_type = res
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        let body = res.body().limit(1 << 20).await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains(needle), "{path}");
        assert!(
            !text.contains("http://") && !text.contains("https://"),
            "{path} fetches nothing from elsewhere"
        );
    }
    app.get("/events/nope/seatmap")
        .await
        .expect_error(404, "not_found");
}
