//! The statistics page through both routers: who may open it on which listener, the
//! sign-in session's cookie, and that its figures are the API's.

use axum::body::Body;
use footfall::SiteId;
use footfall_server::admin::tokens::{Scope, TokenGrant};
use footfall_server::sites::{Site, SiteSettings};
use footfall_server::state::Options;
use http::{StatusCode, header};

use crate::support::{
    ADMIN_TOKEN, BROWSER, DNT_SITE, Harness, Reply, beacon, request, request_from, send,
    test_options,
};

/// A token of `caukee` only.
const CAUKEE_TOKEN: &str = "caukee-webmaster-token-stats";
/// A token of `demo` only.
const DEMO_TOKEN: &str = "demo-webmaster-token-stats-1";

fn harness() -> Harness {
    let site = |id: &str| Scope::Sites(vec![SiteId::new(id).expect("a valid id")]);
    Harness::with_options(Options {
        admin_token_grants: vec![
            TokenGrant::new(CAUKEE_TOKEN, site(DNT_SITE)),
            TokenGrant::new(DEMO_TOKEN, site("demo")),
        ],
        ..test_options()
    })
}

fn get(uri: &str, auth: Option<&str>) -> http::Request<Body> {
    let mut builder = request("GET", uri);
    if let Some(token) = auth {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(Body::empty()).expect("a request")
}

fn text(reply: &Reply) -> &str {
    std::str::from_utf8(&reply.body).expect("UTF-8")
}

fn sign_in_request(site: &str) -> http::request::Builder {
    request("POST", &format!("/stats/{site}/sign-in"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "127.0.0.1:9464")
        .header(header::ORIGIN, "http://127.0.0.1:9464")
        .header("sec-fetch-site", "same-origin")
}

fn form(token: &str) -> Body {
    Body::from(format!("token={token}"))
}

#[tokio::test]
async fn only_the_sites_tokens_and_operators_open_its_page() {
    let harness = harness();
    let app = harness.internal();
    let page = "/stats/caukee";
    // Another site's token: 403; the site's own and an operator's: 200.
    let reply = send(&app, get(page, Some(DEMO_TOKEN))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    for token in [CAUKEE_TOKEN, ADMIN_TOKEN] {
        let reply = send(&app, get(page, Some(token))).await;
        assert_eq!(reply.status, StatusCode::OK, "{token}: {reply:?}");
        assert!(text(&reply).contains("<html lang=\"vi\">"));
    }
    // No credentials: the sign-in form; a wrong token: 401 as on the admin API.
    let reply = send(&app, get(page, None)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        text(&reply).contains("action=\"/stats/caukee/sign-in"),
        "{}",
        text(&reply)
    );
    let reply = send(&app, get(page, Some("not-a-token-of-anyone"))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["error"]["code"], "unauthorized");
    // The site's token on a site it does not manage, registered or not: 403 alike.
    let reply = send(&app, get("/stats/nowhere", Some(CAUKEE_TOKEN))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    // An operator learns that an unknown site is unknown.
    let reply = send(&app, get("/stats/nowhere", Some(ADMIN_TOKEN))).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_page_runs_no_script_under_a_strict_csp_in_either_language() {
    let harness = harness();
    let app = harness.internal();
    for (uri, accept, lang) in [
        ("/stats/caukee", None, "vi"),
        ("/stats/caukee?lang=en", None, "en"),
        ("/stats/caukee", Some("en-GB,en;q=0.9"), "en"),
        ("/stats/caukee?lang=vi", Some("en"), "vi"),
        ("/stats/caukee?days=365&lang=en", None, "en"),
    ] {
        let mut builder =
            request("GET", uri).header(header::AUTHORIZATION, format!("Bearer {CAUKEE_TOKEN}"));
        if let Some(accept) = accept {
            builder = builder.header(header::ACCEPT_LANGUAGE, accept);
        }
        let reply = send(&app, builder.body(Body::empty()).unwrap()).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {reply:?}");
        let html = text(&reply);
        assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{uri}");
        assert!(!html.to_ascii_lowercase().contains("<script"), "{uri}");
        assert!(
            !html.contains("style=\""),
            "{uri}: a style attribute the CSP blocks"
        );
        let csp = reply.header(header::CONTENT_SECURITY_POLICY).unwrap();
        assert!(
            csp.starts_with("default-src 'none'; style-src 'sha256-"),
            "{csp}"
        );
        assert!(
            !csp.contains("unsafe") && !csp.contains("script-src"),
            "{csp}"
        );
        assert_eq!(reply.header(header::CACHE_CONTROL), Some("no-store"));
        assert!(reply.header(header::SET_COOKIE).is_none());
        // The chart with its title, description and table; the four cards.
        for part in [
            "<svg",
            "<title id=\"daily-chart-title\">",
            "<desc id=",
            "<table id=\"days\"",
            "class=\"legend\"",
        ] {
            assert!(html.contains(part), "{uri}: no {part}");
        }
        assert_eq!(html.matches("<article class=\"card\">").count(), 4, "{uri}");
    }
    let reply = send(&app, get("/stats/caukee?days=7", Some(CAUKEE_TOKEN))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.json()["error"]["code"], "bad_request");
}

#[tokio::test]
async fn signing_in_gives_a_strict_http_only_session_that_ends() {
    let harness = harness();
    let app = harness.internal();
    // A wrong token and another site's token: the form again, no cookie.
    for (token, status) in [
        ("not-a-token-of-anyone", StatusCode::UNAUTHORIZED),
        (DEMO_TOKEN, StatusCode::FORBIDDEN),
    ] {
        let reply = send(&app, sign_in_request("caukee").body(form(token)).unwrap()).await;
        assert_eq!(reply.status, status, "{reply:?}");
        assert!(reply.header(header::SET_COOKIE).is_none());
        assert!(text(&reply).contains("role=\"alert\""));
    }
    // A form posted from another site is refused whatever it holds.
    let cross = request("POST", "/stats/caukee/sign-in")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "127.0.0.1:9464")
        .header(header::ORIGIN, "https://evil.example")
        .body(form(CAUKEE_TOKEN))
        .unwrap();
    let reply = send(&app, cross).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.header(header::SET_COOKIE).is_none());

    let reply = send(
        &app,
        sign_in_request("caukee").body(form(CAUKEE_TOKEN)).unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{reply:?}");
    assert_eq!(
        reply.header(header::LOCATION),
        Some("/stats/caukee?lang=vi")
    );
    let set = reply
        .header(header::SET_COOKIE)
        .expect("a session cookie")
        .to_owned();
    let attributes: Vec<&str> = set.split("; ").skip(1).collect();
    assert_eq!(
        attributes,
        [
            "Path=/stats",
            "Max-Age=43200",
            "HttpOnly",
            "SameSite=Strict"
        ],
        "plain HTTP: no Secure"
    );
    assert!(!set.contains(CAUKEE_TOKEN));
    let cookie = set.split(';').next().unwrap().to_owned();
    let with_cookie = |uri: &str| {
        request("GET", uri)
            .header(header::COOKIE, cookie.clone())
            .body(Body::empty())
            .unwrap()
    };
    let reply = send(&app, with_cookie("/stats/caukee")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(text(&reply).contains("action=\"/stats/caukee/sign-out\""));
    // The session is the token's: it opens no other site.
    let reply = send(&app, with_cookie("/stats/demo")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    // Twelve hours on, it has ended: the form again, and the cookie cleared.
    harness.clock.advance(jiff::SignedDuration::from_hours(12));
    let reply = send(&app, with_cookie("/stats/caukee")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply
            .header(header::SET_COOKIE)
            .unwrap()
            .contains("Max-Age=0")
    );

    // Through a trusted proxy that terminated TLS, the cookie is Secure.
    let reply = send(
        &app,
        request_from("POST", "/stats/caukee/sign-in?lang=en", "10.0.0.1:40000")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-forwarded-proto", "https")
            .body(form(CAUKEE_TOKEN))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        reply.header(header::LOCATION),
        Some("/stats/caukee?lang=en")
    );
    assert!(
        reply
            .header(header::SET_COOKIE)
            .unwrap()
            .ends_with("; Secure")
    );
    // Signing out clears it.
    let reply = send(
        &app,
        request("POST", "/stats/caukee/sign-out")
            .header(header::COOKIE, cookie.clone())
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert!(
        reply
            .header(header::SET_COOKIE)
            .unwrap()
            .contains("Max-Age=0")
    );
}

#[tokio::test]
async fn the_public_listener_serves_the_page_only_when_the_site_opts_in() {
    let harness = harness();
    let (public, internal) = (harness.public(), harness.internal());
    let reply = send(&public, get("/stats/caukee", None)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json()["error"]["code"], "not_found");
    // A token changes nothing there: the public listener has no owners' pages.
    let reply = send(&public, get("/stats/caukee", Some(ADMIN_TOKEN))).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    let mut settings = SiteSettings::new(DNT_SITE, &["caukee.travinh.gov.vn"]);
    settings.stats_public = true;
    harness
        .state
        .sites
        .upsert(Site::from_settings(settings, "").expect("valid"));
    let reply = send(&public, get("/stats/caukee?lang=en", None)).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let html = text(&reply);
    assert!(html.contains("<html lang=\"en\">"));
    assert!(!html.contains("sign-out") && !html.to_ascii_lowercase().contains("<script"));
    assert!(reply.header(header::SET_COOKIE).is_none());
    assert!(
        reply
            .header(header::CONTENT_SECURITY_POLICY)
            .unwrap()
            .contains("style-src 'sha256-")
    );
    // The internal listener is still the owners': a public site's page needs a token there.
    let reply = send(&internal, get("/stats/caukee", None)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
}

/// The text of the element with `attribute` (`data-date="…"` or the like) up to `end`.
fn section<'h>(html: &'h str, start: &str, end: &str) -> &'h str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in the page"));
    let rest = &html[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

#[tokio::test]
async fn the_pages_figures_are_the_apis() {
    let mut harness = harness();
    let public = harness.public();
    let demo = SiteId::new("demo").unwrap();
    footfall::counter::set_baseline(
        harness.store.as_ref(),
        &demo,
        footfall::Metric::Visits,
        7_289_126,
        false,
        footfall::clock::Clock::now(harness.clock.as_ref()),
    )
    .await
    .unwrap();
    for user_agent in [
        BROWSER,
        BROWSER,
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
    ] {
        let mut hit = beacon(r#"{"site":"demo","path":"/"}"#);
        hit.headers_mut()
            .insert(header::USER_AGENT, user_agent.parse().unwrap());
        assert_eq!(send(&public, hit).await.status, StatusCode::NO_CONTENT);
    }
    harness.flush().await;
    let internal = harness.internal();

    let history = send(&public, get("/api/v1/sites/demo/history?days=30", None))
        .await
        .json();
    let counts = send(&public, get("/api/v1/sites/demo/counts", None))
        .await
        .json();
    let reply = send(&internal, get("/stats/demo?lang=en", Some(DEMO_TOKEN))).await;
    assert_eq!(reply.status, StatusCode::OK);
    let html = text(&reply);
    let days = history["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    let today = days.last().unwrap();
    assert_eq!(today["pageviews"], 3, "{history}");
    for day in days {
        let row = section(
            html,
            &format!("<tr data-date=\"{}\">", day["date"].as_str().unwrap()),
            "</tr>",
        );
        for metric in ["pageviews", "visits", "visitors"] {
            let cell = format!("<td data-metric=\"{metric}\">{}</td>", day[metric]);
            assert!(row.contains(&cell), "{metric} of {}: {row}", day["date"]);
        }
    }
    // The busiest day is today, and the all-time totals mark the imported baseline.
    let busiest = section(html, "<table id=\"busiest-days\"", "</table>");
    assert!(busiest.contains(&format!(
        "<tr data-date=\"{}\">",
        today["date"].as_str().unwrap()
    )));
    let total = counts["total"]["visits"].as_u64().unwrap();
    assert_eq!(total, 7_289_126 + 2);
    let all_time = section(html, "<dd data-metric=\"visits\">", "</dd>");
    assert!(
        all_time.contains("<strong>7,289,128</strong>"),
        "{all_time}"
    );
    assert!(all_time.contains("data-baseline=\"7289126\""), "{all_time}");
    assert!(all_time.contains("+ 2 counted by footfall"), "{all_time}");
    // The today card shows the footer's figure (visits) with its definition.
    let card = section(html, "<article class=\"card\"><h3>Today</h3>", "</article>");
    assert!(
        card.contains(&format!(
            "<p class=\"value\">{}</p>",
            counts["today"]["visits"]
        )),
        "{card}"
    );
    assert!(card.contains("Visits since 00:00 today"), "{card}");
}
