//! The operator console in a real browser: Debian's headless Chromium driven over
//! WebDriver (its ChromeDriver), against the real server on loopback with the Twilio
//! simulator. Each page is checked with axe-core (vendored in `tests/assets`), run inside
//! the page, for WCAG 2 A and AA violations, and at 375 px wide. The screenshots in the
//! README are taken here.
//!
//! Without Chromium and ChromeDriver installed (`.ci/browser` installs them), a test says
//! loudly that it was skipped; under `CI=true` it fails instead.

use crate::escalation::{Phones, alarm, alarm_alert, escalating_app, route_all_to, wait_until};
use crate::oncall::key;
use crate::support::TestApp;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const A: &str = "+15550000001";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium of the test's own, with its own profile, and its driver.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Option<Self> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            let why = "Chromium and ChromeDriver are not installed (.ci/browser installs them)";
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "browser tests cannot run: {why}"
            );
            eprintln!("SKIPPED: {why}");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({"goog:chromeOptions": {"binary": CHROMIUM, "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--window-size=1280,900",
            format!("--user-data-dir={}", profile.path().display()),
        ]}});
        let capabilities = capabilities.as_object().unwrap().clone();
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..100 {
            match ClientBuilder::native()
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Some(Self {
                        client,
                        driver,
                        _profile: profile,
                    });
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no WebDriver session: {last:?}");
    }

    async fn stop(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    async fn goto(&self, app: &TestApp, path: &str) {
        self.client
            .goto(&format!("{}{path}", app.base))
            .await
            .unwrap();
    }

    /// Signs in with `secret` from the sign-in page.
    async fn sign_in(&self, app: &TestApp, secret: &str) {
        self.goto(app, "/console/incidents").await;
        let url = self.client.current_url().await.unwrap();
        assert_eq!(
            url.path(),
            "/console/sign-in",
            "unsigned, one signs in first"
        );
        self.client
            .find(Locator::Id("key"))
            .await
            .unwrap()
            .send_keys(secret)
            .await
            .unwrap();
        self.client
            .find(Locator::Css("main button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.wait_for_path("/console/incidents").await;
    }

    /// Waits up to 20 s for the page shown to be `path` (a click's navigation may still be
    /// under way when the click returns).
    async fn wait_for_path(&self, path: &str) {
        let mut seen = String::new();
        for _ in 0..200 {
            seen = self.client.current_url().await.unwrap().path().to_owned();
            if seen == path {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let source = self.client.source().await.unwrap_or_default();
        panic!("the browser never reached {path}; it shows {seen}:\n{source}");
    }

    /// The text of the first element `css` finds, waiting up to 20 s for it to contain
    /// `wanted`.
    async fn wait_for_text(&self, css: &str, wanted: &str) -> String {
        let mut seen = String::new();
        for _ in 0..200 {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                seen = element.text().await.unwrap_or_default();
                if seen.contains(wanted) {
                    return seen;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let source = self.client.source().await.unwrap_or_default();
        panic!("{css} never showed {wanted:?}; it shows {seen:?} in:\n{source}");
    }

    /// axe-core's WCAG 2 A and AA violations on the page shown, one line each.
    async fn accessibility_violations(&self) -> Vec<String> {
        let axe =
            std::fs::read_to_string(tocsin_tests::workspace().join("tests/assets/axe.min.js"))
                .unwrap();
        self.client.execute(&axe, vec![]).await.unwrap();
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
                    .then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' (' + v.nodes.length + ')')))
                    .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .unwrap();
        serde_json::from_value(found).unwrap()
    }

    /// Checks the page shown at 375 px wide: no violations, and nothing wider than the
    /// screen; then back to the desktop width.
    async fn check_page(&self, what: &str) {
        let violations = self.accessibility_violations().await;
        assert!(violations.is_empty(), "{what}: {violations:#?}");
        self.client.set_window_size(375, 812).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let overflow = self
            .client
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        if overflow.as_i64().unwrap() > 0 {
            let wide = self
                .client
                .execute(
                    "return [...document.querySelectorAll('body *')]
                        .filter(e => e.getBoundingClientRect().right > window.innerWidth)
                        .map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 10);",
                    vec![],
                )
                .await
                .unwrap();
            panic!("{what} is wider than 375 px by {overflow}: {wide}");
        }
        let violations = self.accessibility_violations().await;
        assert!(violations.is_empty(), "{what} at 375 px: {violations:#?}");
        self.client.set_window_size(1280, 900).await.unwrap();
    }

    /// Saves a screenshot of the page shown for the README.
    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir: PathBuf = tocsin_tests::workspace().join("docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }
}

/// A console session of `secret`, signed in without a browser: the cookie, and the CSRF
/// token of its forms (read from a page, as a forger with the session could).
async fn session_of(app: &TestApp, secret: &str, incident: &str) -> (String, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed = client
        .post(format!("{}/console/sign-in", app.base))
        .form(&[("key", secret), ("next", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    let cookie = signed.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = client
        .get(format!("{}/console/incidents/{incident}", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    (cookie, csrf)
}

async fn forged(app: &TestApp, cookie: &str, path: &str, csrf: Option<&str>) -> StatusCode {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form: Vec<(&str, &str)> = csrf.map(|c| vec![("csrf", c)]).unwrap_or_default();
    client
        .post(format!("{}{path}", app.base))
        .header("cookie", cookie)
        .form(&form)
        .send()
        .await
        .unwrap()
        .status()
}

async fn roster_of_one(app: &TestApp) {
    let roster = app
        .send(
            Method::POST,
            "/rosters",
            json!({"name": "primary", "members": [{"name": "Ada", "phone": A}], "loops": 1,
                   "ringTimeoutSeconds": 600}),
            StatusCode::CREATED,
        )
        .await;
    route_all_to(app, roster["id"].as_str().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_sees_an_incident_arrive_live_and_acknowledges_it_in_the_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    // Ada's phone rings (a long ring timeout) until someone acts.
    let phones = Phones::start(&[(A, "no-answer")]).await;
    let app = escalating_app(&phones).await;
    roster_of_one(&app).await;
    let alert = alarm_alert(&app).await;
    let editor = key(&app, "editor").await;

    browser.sign_in(&app, &editor).await;
    browser
        .wait_for_text("#incident-rows", "No incidents.")
        .await;
    browser.check_page("the incidents page").await;
    // A marker the page keeps only if it is never reloaded.
    browser
        .client
        .execute("window.tocsinMarker = 42;", vec![])
        .await
        .unwrap();
    alarm(&app, "a1", "FIRING").await;
    let row = browser.wait_for_text("#incident-rows", "DiskFull").await;
    assert!(row.contains("OPEN"), "{row}");
    let marker = browser
        .client
        .execute("return window.tocsinMarker;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, json!(42), "the row arrived without a reload");
    browser.wait_for_text("#incident-rows", "Ada").await;
    browser.screenshot("incidents.png").await;

    browser
        .client
        .find(Locator::Css("#incident-rows a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let report = browser.wait_for_text("main table", "DiskFull").await;
    assert!(report.contains("db-a1"), "{report}");
    browser
        .wait_for_text("#calling-now", "Calling now: Ada")
        .await;
    browser.check_page("the incident page").await;
    browser.screenshot("incident.png").await;
    let incident_url = browser.client.current_url().await.unwrap();
    let incident = incident_url.path().rsplit('/').next().unwrap().to_owned();

    browser
        .client
        .find(Locator::XPath("//button[normalize-space()='Acknowledge']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait_for_text("#incident-status", "ACKNOWLEDGED")
        .await;
    let seen = app.get(&format!("/incidents/{incident}")).await;
    assert_eq!(seen["status"], "ACKNOWLEDGED");
    let details = app.get(&format!("/incidents/{incident}/details")).await;
    assert_eq!(details["acknowledgedBy"], "editor key");
    // The loop stopped: the ringing call is ended, and nobody else is called.
    wait_until("the ringing call ended", || async {
        let calls = phones.calls().await;
        (calls.len() == 1 && calls[0]["status"] != "ringing").then_some(())
    })
    .await;
    browser
        .wait_for_text("#calling-now", "No call under way")
        .await;
    let _ = alert;
    browser.stop().await;
    app.stop().await;
    phones.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_see_no_actions_and_forged_posts_change_nothing() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let phones = Phones::start(&[(A, "no-answer")]).await;
    let app = escalating_app(&phones).await;
    roster_of_one(&app).await;
    let alert = alarm_alert(&app).await;
    alarm(&app, "a1", "FIRING").await;
    let incident = crate::escalation::incident_where(&app, &alert, |_| true).await;
    let incident = incident["id"].as_str().unwrap().to_owned();
    let viewer = key(&app, "viewer").await;
    let editor = key(&app, "editor").await;

    browser.sign_in(&app, &viewer).await;
    browser
        .goto(&app, &format!("/console/incidents/{incident}"))
        .await;
    browser.wait_for_text("main table", "DiskFull").await;
    let buttons = browser
        .client
        .find_all(Locator::Css("main button"))
        .await
        .unwrap();
    assert!(buttons.is_empty(), "a viewer sees no Acknowledge or Close");

    // Forged posts: without the token, with a wrong one, or from a viewer's session.
    let (editor_cookie, editor_csrf) = session_of(&app, &editor, &incident).await;
    let (viewer_cookie, viewer_csrf) = session_of(&app, &viewer, &incident).await;
    let acknowledge = format!("/console/incidents/{incident}/acknowledge");
    let close = format!("/console/incidents/{incident}/close");
    for (cookie, csrf) in [
        (editor_cookie.as_str(), None),
        (editor_cookie.as_str(), Some("not-the-token")),
        (editor_cookie.as_str(), Some(viewer_csrf.as_str())),
        (viewer_cookie.as_str(), Some(viewer_csrf.as_str())),
        ("tocsin_session=forged", Some(editor_csrf.as_str())),
    ] {
        for path in [&acknowledge, &close] {
            assert_eq!(
                forged(&app, cookie, path, csrf).await,
                StatusCode::FORBIDDEN,
                "{path} with {cookie} and {csrf:?}"
            );
        }
    }
    let seen = app.get(&format!("/incidents/{incident}")).await;
    assert_eq!(seen["status"], "OPEN", "nothing changed");
    // The editor's own form works.
    assert_eq!(
        forged(&app, &editor_cookie, &acknowledge, Some(&editor_csrf)).await,
        StatusCode::SEE_OTHER
    );
    let seen: Value = app.get(&format!("/incidents/{incident}")).await;
    assert_eq!(seen["status"], "ACKNOWLEDGED");
    // Revoking the key ends its sessions.
    let keys = app.get("/api_keys").await;
    let viewer_id = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "viewer key")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/api_keys/{viewer_id}"),
            Some(crate::support::ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    browser.goto(&app, "/console/incidents").await;
    browser.wait_for_path("/console/sign-in").await;
    browser.stop().await;
    app.stop().await;
    phones.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_on_call_page_shows_the_holder_the_schedule_api_reports_across_a_handoff() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = crate::support::spawn_app().await;
    let operator = |name: &str, phone: &str| {
        let body = json!({"name": name, "phone": phone});
        let app = &app;
        async move {
            app.send(Method::POST, "/operators", body, StatusCode::CREATED)
                .await["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let ada = operator("Ada", "+15550000001").await;
    let bo = operator("Bo", "+15550000002").await;
    // Mondays 09:00 London; the clock reads Wednesday 2026-03-04 10:00Z: Ada's week.
    let rotation = app
        .send(
            Method::POST,
            "/rotations",
            json!({"name": "primary", "timeZone": "Europe/London", "type": "weekly", "shiftLength": 1,
                   "handoffAt": "2026-03-02T09:00", "participants": [ada, bo]}),
            StatusCode::CREATED,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let schedule = app
        .send(
            Method::POST,
            "/schedules",
            json!({"name": "db", "timeZone": "Europe/London", "rules": [{"rotationId": rotation,
                   "days": ["MON","TUE","WED","THU","FRI","SAT","SUN"], "start": "00:00", "end": "00:00"}]}),
            StatusCode::CREATED,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.send(
        Method::POST,
        "/rosters",
        json!({"name": "db on-call", "members": [{"scheduleId": schedule}]}),
        StatusCode::CREATED,
    )
    .await;
    let viewer = key(&app, "viewer").await;
    browser.sign_in(&app, &viewer).await;
    let path = format!("/schedules/{schedule}/on-call");
    for expected in ["Ada", "Bo"] {
        let seen = app.get(&path).await;
        assert_eq!(seen["operators"][0]["name"], expected);
        browser.goto(&app, "/console/on-call").await;
        let shown = browser
            .wait_for_text(&format!("#schedule-{schedule} .on-call"), expected)
            .await;
        assert_eq!(shown, expected);
        let holder = browser.wait_for_text("td.holder", expected).await;
        assert_eq!(holder, expected);
        let roster = browser.wait_for_text("main ul", "db on-call").await;
        assert!(
            roster.contains(&format!("db on-call: {expected}")),
            "{roster}"
        );
        if expected == "Ada" {
            browser.check_page("the on-call page").await;
            // Past Monday's 09:00 handoff; the 12-hour session has ended meanwhile.
            app.advance(chrono::Duration::days(7));
            browser.sign_in(&app, &viewer).await;
        }
    }
    browser.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silence_made_from_an_incident_page_keeps_the_next_matching_incident_from_calling() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let phones = Phones::start(&[(A, "accept")]).await;
    let app = escalating_app(&phones).await;
    roster_of_one(&app).await;
    let alert = alarm_alert(&app).await;
    alarm(&app, "a1", "FIRING").await;
    let first =
        crate::escalation::incident_where(&app, &alert, |i| i["status"] == "ACKNOWLEDGED").await;
    let first = first["id"].as_str().unwrap().to_owned();
    let editor = key(&app, "editor").await;

    browser.sign_in(&app, &editor).await;
    browser
        .goto(&app, &format!("/console/incidents/{first}"))
        .await;
    browser
        .client
        .find(Locator::LinkText("Silence similar…"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let prefilled = browser
        .client
        .find(Locator::Id("matchers"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default();
    assert_eq!(prefilled, format!("alertId = {alert}\nsubject = a1"));
    browser.check_page("the silences page").await;
    browser
        .client
        .find(Locator::XPath("//button[normalize-space()='Silence']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let listed = browser.wait_for_text("main table", "active").await;
    assert!(listed.contains("editor key"), "{listed}");
    let silences = app.get("/silences?state=active").await;
    assert_eq!(silences["data"].as_array().unwrap().len(), 1);

    // The alarm clears and fires again: a new incident, held; nobody is called.
    alarm(&app, "a1", "RESOLVED").await;
    crate::escalation::incident_where(&app, &alert, |i| i["status"] == "CLOSED").await;
    alarm(&app, "a1", "FIRING").await;
    wait_until("the new incident held", || async {
        let held = app.get("/incidents?silenced=true").await;
        (held["data"].as_array().unwrap().len() == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        phones.called().await,
        [A],
        "only the first incident was called"
    );
    browser.stop().await;
    app.stop().await;
    phones.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_integrations_and_operators_pages_show_what_the_api_holds() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let phones = Phones::start(&[(A, "accept")]).await;
    let app = escalating_app(&phones).await;
    let ada = app
        .send(
            Method::POST,
            "/operators",
            json!({"name": "Ada", "phone": A}),
            StatusCode::CREATED,
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let roster = app
        .send(
            Method::POST,
            "/rosters",
            json!({"name": "primary", "members": [{"operatorId": ada}], "loops": 1}),
            StatusCode::CREATED,
        )
        .await;
    route_all_to(&app, roster["id"].as_str().unwrap()).await;
    let alert = alarm_alert(&app).await;
    alarm(&app, "a1", "FIRING").await;
    crate::escalation::incident_where(&app, &alert, |i| i["status"] == "ACKNOWLEDGED").await;
    let (hook, secret, _) = crate::hooks::integration(&app, "generic", json!({})).await;
    let (status, _) = crate::hooks::deliver(&app, &hook, &secret, b"not json".to_vec()).await;
    assert!(status.is_client_error());
    let viewer = key(&app, "viewer").await;

    // The sign-in page is checked too, before signing in.
    browser.goto(&app, "/console/sign-in").await;
    browser.check_page("the sign-in page").await;
    browser.sign_in(&app, &viewer).await;

    browser.goto(&app, "/console/alerts").await;
    let row = browser
        .wait_for_text(&format!("#alert-{alert}"), "cloud_alarm")
        .await;
    assert!(row.contains("ok"), "the last evaluation: {row}");
    let templates = browser.wait_for_text("main", "credit_low_balance").await;
    assert!(templates.contains("built in"), "{templates}");
    browser.check_page("the alerts page").await;

    browser.goto(&app, "/console/integrations").await;
    let section = browser
        .wait_for_text(&format!("#integration-{hook}"), "Refused")
        .await;
    assert!(section.contains(&format!("/hooks/{hook}")), "{section}");
    assert!(section.contains("not JSON"), "the reason: {section}");
    browser.check_page("the integrations page").await;

    browser.goto(&app, "/console/operators").await;
    let stats = browser
        .wait_for_text(&format!("#operator-{ada}"), "1 calls")
        .await;
    assert!(stats.contains("1 accepted"), "{stats}");
    let api = app.get(&format!("/operators/{ada}/stats")).await;
    assert_eq!(api["accepted"], 1);
    let chart = browser
        .client
        .find(Locator::Css(&format!(
            "#operator-{ada} svg rect.bar-accepted"
        )))
        .await
        .unwrap()
        .attr("width")
        .await
        .unwrap();
    assert_eq!(
        chart.as_deref(),
        Some("200"),
        "one call, accepted: a full bar"
    );
    browser.check_page("the operators page").await;
    browser.stop().await;
    app.stop().await;
    phones.server.stop().await;
}

/// What needs no browser: static files by content hash, the security headers, and sign-in
/// guessing refused per address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_files_revalidate_pages_are_locked_down_and_guessing_is_refused() {
    let app = crate::support::spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |path: &str| format!("{}{path}", app.base);
    let htmx = client
        .get(url("/console/static/htmx.min.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(htmx.status(), StatusCode::OK);
    let etag = htmx.headers()["etag"].to_str().unwrap().to_owned();
    assert!(
        htmx.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let again = client
        .get(url("/console/static/htmx.min.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let page = client.get(url("/console/sign-in")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("htmx.min.js?v={}", etag.trim_matches('"'))),
        "pages link the file by its hash"
    );
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "nothing inline"
    );
    // Unsigned, a page sends one to sign in, and back.
    let page = client
        .get(url("/console/incidents/inc_123"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        page.headers()["location"],
        "/console/sign-in?next=/console/incidents/inc_123"
    );

    let sign_in = |secret: &'static str| {
        let client = client.clone();
        let url = url("/console/sign-in");
        async move {
            client
                .post(url)
                .form(&[("key", secret)])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for _ in 0..10 {
        assert_eq!(sign_in("tsk_wrong").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(sign_in("tsk_wrong").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        sign_in(crate::support::ADMIN_KEY).await,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right key, from a guessing address"
    );
    app.stop().await;
}
