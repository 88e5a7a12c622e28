//! The dashboard's routes over a real socket, and the rules its files keep (no inline script or
//! style, so the strict policy holds; every file the page names is served).

use super::{router, ASSETS, CONTENT_SECURITY_POLICY};

/// Serves the dashboard router on a loopback port; answers its base URL.
async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router::<()>()).await });
    format!("http://{addr}")
}

fn client() -> reqwest::Client {
    hoist_common::init_tls();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn the_page_and_its_files_come_with_their_types_and_the_policy() {
    let base = serve().await;
    let http = client();
    for (path, ty) in [
        ("/ui", "text/html; charset=utf-8"),
        ("/ui/", "text/html; charset=utf-8"),
        ("/ui/index.html", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        assert_eq!(h["content-type"], ty, "{path}");
        assert_eq!(h["content-security-policy"], CONTENT_SECURITY_POLICY);
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["cache-control"], "no-cache");
        assert!(!r.bytes().await.unwrap().is_empty(), "{path}");
    }
}

#[tokio::test]
async fn a_known_etag_is_answered_not_modified_and_an_unknown_file_not_found() {
    let base = serve().await;
    let http = client();
    let first = http.get(format!("{base}/ui/app.js")).send().await.unwrap();
    let etag = first.headers()["etag"].clone();
    let again = http
        .get(format!("{base}/ui/app.js"))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag);
    assert!(again.bytes().await.unwrap().is_empty());
    // Another file's tag does not match.
    let css = http
        .get(format!("{base}/ui/style.css"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);

    for path in [
        "/ui/nope.js",
        "/ui/assets/app.js",
        "/ui/app.js.map",
        "/ui/x/",
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(
            r.headers()["content-security-policy"],
            CONTENT_SECURITY_POLICY
        );
    }
}

#[test]
fn only_embedded_files_are_answered() {
    let headers = axum::http::HeaderMap::new();
    for name in [
        "../Cargo.toml",
        "../../ui/mod.rs",
        "",
        "assets/index.html",
        "APP.JS",
    ] {
        assert_eq!(super::answer(name, &headers).status(), 404, "{name}");
    }
}

fn text(name: &str) -> &'static str {
    let a = ASSETS.iter().find(|a| a.name == name).unwrap();
    std::str::from_utf8(a.body).unwrap()
}

#[test]
fn the_page_has_no_inline_script_or_style() {
    let html = text("index.html").to_ascii_lowercase();
    let mut scripts = 0;
    for (i, _) in html.match_indices("<script") {
        let tag = &html[i..i + html[i..].find('>').unwrap()];
        assert!(tag.contains("src=\"/ui/"), "inline script: {tag}");
        let after = &html[i + tag.len() + 1..];
        assert!(after.starts_with("</script>"), "script with a body");
        scripts += 1;
    }
    assert_eq!(scripts, 1);
    assert!(!html.contains("<style"), "inline style element");
    assert!(!html.contains(" style="), "style attribute");
    assert!(!html.contains("javascript:"));
    // No event handler attributes (onclick=, onload= ...).
    for (i, _) in html.match_indices(" on") {
        let word: String = html[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        assert!(
            !html[i + 1 + word.len()..].starts_with('='),
            "handler attribute {word}"
        );
    }
    // The script builds its markup with DOM calls: no HTML strings, no style attributes, no eval.
    let js = text("app.js");
    for banned in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "setAttribute(\"style\"",
        ".style.",
    ] {
        assert!(!js.contains(banned), "app.js uses {banned}");
    }
}

#[test]
fn every_file_the_page_names_is_embedded() {
    let html = text("index.html");
    for (i, _) in html.match_indices("\"/ui/") {
        let path = &html[i + 5..i + 1 + html[i + 1..].find('"').unwrap()];
        assert!(
            ASSETS.iter().any(|a| a.name == path),
            "index.html names /ui/{path}, which is not embedded"
        );
    }
}
