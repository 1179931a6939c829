//! Parallel HTTP requests on one event: exact counts.

use futures_util::future::join_all;

use crate::helpers::{Backend, Body, TestApp};

pub async fn fifty_parallel_reserves_on_capacity_ten_answer_ten_201_and_forty_409(
    backend: Backend,
) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(10).await;
    let answers = join_all((0..50).map(|_| app.reserve(event))).await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    let sold_out = answers
        .iter()
        .filter(|a| a.status == 409 && a.body["error"] == "sold_out")
        .count();
    assert_eq!((created, sold_out), (10, 40), "{answers:?}");
    let body = app
        .get(&format!("/api/events/{event}"))
        .await
        .expect(200)
        .clone();
    assert_eq!(
        (body["reserved"].as_i64(), body["available"].as_i64()),
        (Some(10), Some(0))
    );
}

pub async fn twenty_parallel_purchases_of_one_hold_answer_one_200_and_nineteen_409(
    backend: Backend,
) {
    let app = TestApp::spawn(backend);
    let event = app.create_event(1).await;
    let id = app.hold(event).await;
    let answers = join_all((0..20).map(|_| app.purchase(&id, Body::None))).await;
    let won = answers.iter().filter(|a| a.status == 200).count();
    let already = answers
        .iter()
        .filter(|a| a.status == 409 && a.body["error"] == "already_purchased")
        .count();
    assert_eq!((won, already), (1, 19), "{answers:?}");
}
