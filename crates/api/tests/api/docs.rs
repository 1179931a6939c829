//! The OpenAPI document and the docs page, served by the app itself.

use crate::helpers::{Backend, TestApp};

pub async fn the_openapi_document_is_served_as_openapi_3_1(backend: Backend) {
    let app = TestApp::spawn(backend);
    let doc = app.get("/api/openapi.json").await;
    let doc = doc.expect(200);
    assert_eq!(doc["openapi"], "3.1.0");
    let reserve = &doc["paths"]["/api/events/{event}/reserve"]["post"];
    assert_eq!(
        reserve["responses"]["201"]["links"]["purchase"]["operationId"],
        "purchase"
    );
    assert_eq!(
        doc["components"]["schemas"]["ReserveRequest"]["properties"]["quantity"]["maximum"],
        10
    );
    let wrong = app
        .post("/api/openapi.json", crate::helpers::Body::None)
        .await;
    wrong.expect_error(405, "method_not_allowed");
}

pub async fn the_docs_page_and_its_assets_come_from_the_binary(backend: Backend) {
    let app = TestApp::spawn(backend);
    let no_follow = awc::Client::builder().disable_redirects().finish();
    let res = no_follow.get(app.url("/docs")).send().await.expect("docs");
    assert!(res.status().is_redirection(), "{:?}", res.status());
    assert_eq!(
        res.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/docs/")
    );
    for (path, kind, needle) in [
        ("/docs/", "text/html", "swagger-ui"),
        (
            "/docs/swagger-initializer.js",
            "javascript",
            "/api/openapi.json",
        ),
        (
            "/docs/swagger-ui-bundle.js",
            "javascript",
            "SwaggerUIBundle",
        ),
        ("/docs/swagger-ui.css", "text/css", ".swagger-ui"),
    ] {
        let mut res = app.client.get(app.url(path)).send().await.expect(path);
        assert_eq!(res.status().as_u16(), 200, "{path}");
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(content_type.contains(kind), "{path}: {content_type}");
        let body = res.body().limit(8 << 20).await.expect("body");
        assert!(
            String::from_utf8_lossy(&body).contains(needle),
            "{path} lacks {needle}"
        );
    }
    // No asset is fetched from elsewhere: the page names none.
    let mut page = app
        .client
        .get(app.url("/docs/"))
        .send()
        .await
        .expect("page");
    let html = String::from_utf8_lossy(&page.body().await.expect("body")).into_owned();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
}
