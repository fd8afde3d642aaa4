//! The status page in a real browser: Debian's headless Chromium, with scripting off, against a
//! real `skillsync serve` and simulator, after a nightly full sync and a few HRIS events (one
//! of them rejected). The page must show the run, its counts, the queue and the rejection's
//! reason; hold no script; and render to a screenshot that is not blank.
//!
//! Chromium is `SKILLSYNC_TEST_CHROMIUM` (a path) or `/usr/bin/chromium`; without either the
//! browser test says it is skipped and passes, so `cargo test` runs on a laptop without one
//! (`.ci/run` installs it).
#![cfg(unix)]

mod common;

use std::io::{BufRead as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::serve::*;
use common::*;
use serde_json::{Value, json};
use skillsync_sim::GenerateOptions;

/// The browser, or `None` (with why) when this machine has none.
fn chromium() -> Option<PathBuf> {
    match std::env::var_os("SKILLSYNC_TEST_CHROMIUM").filter(|v| !v.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.exists(),
                "SKILLSYNC_TEST_CHROMIUM={} does not exist",
                path.display()
            );
            Some(path)
        }
        None => {
            let default = Path::new("/usr/bin/chromium");
            default.exists().then(|| default.to_path_buf())
        }
    }
}

/// Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
/// JSON messages ending in a NUL byte, commands on file descriptor 3, answers on 4), so that a
/// page loaded with scripting disabled (`Emulation.setScriptExecutionDisabled`) can still be
/// read back (`DOM.getOuterHTML`) and photographed (`Page.captureScreenshot`): the command
/// line's `--dump-dom` and `--screenshot` run a script of their own and give nothing when
/// scripting is off.
struct Browser {
    child: Child,
    commands: std::io::PipeWriter,
    answers: mpsc::Receiver<Value>,
    /// Events that arrived while waiting for an answer, oldest first.
    events: Vec<Value>,
    next_id: u64,
    /// The page's session (flat mode); empty before one is attached.
    session: String,
    stderr: Arc<Mutex<String>>,
}

/// How long one protocol call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

impl Browser {
    fn launch(path: &Path, profile: &Path) -> Browser {
        let (child_commands, commands) = std::io::pipe().unwrap();
        let (answers_pipe, child_answers) = std::io::pipe().unwrap();
        let (read_fd, write_fd) = (child_commands.as_raw_fd(), child_answers.as_raw_fd());
        let mut command = Command::new(path);
        command
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-sync",
                "--disable-background-networking",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: between fork and exec only async-signal-safe calls (fcntl, dup2). The ends
        // are first moved above 10 so that placing one on 3 cannot close the other.
        unsafe {
            command.pre_exec(move || {
                let high_read = libc::fcntl(read_fd, libc::F_DUPFD, 10);
                let high_write = libc::fcntl(write_fd, libc::F_DUPFD, 10);
                if high_read < 0
                    || high_write < 0
                    || libc::dup2(high_read, 3) < 0
                    || libc::dup2(high_write, 4) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        drop((child_commands, child_answers));
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let (send, answers) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(answers_pipe);
            let mut message = Vec::new();
            while matches!(reader.read_until(0, &mut message), Ok(n) if n > 0) {
                message.pop_if(|b| *b == 0);
                if let Ok(value) = serde_json::from_slice::<Value>(&message)
                    && send.send(value).is_err()
                {
                    break;
                }
                message.clear();
            }
        });
        let mut browser = Browser {
            child,
            commands,
            answers,
            events: Vec::new(),
            next_id: 0,
            session: String::new(),
            stderr,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        browser.call("Page.enable", json!({}));
        browser.call(
            "Emulation.setScriptExecutionDisabled",
            json!({"value": true}),
        );
        browser
    }

    /// Sends `method` (to the page once attached) and waits for its answer's result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).unwrap();
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let message = self.next_message(deadline, method);
            if message["id"] == id {
                assert!(message.get("error").is_none(), "{method}: {message}");
                return message["result"].clone();
            }
            if message.get("method").is_some() {
                self.events.push(message);
            }
        }
    }

    fn next_message(&mut self, deadline: Instant, waiting_for: &str) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        self.answers.recv_timeout(left).unwrap_or_else(|e| {
            panic!(
                "chromium: no answer to {waiting_for} ({e}): {}",
                self.stderr.lock().unwrap()
            )
        })
    }

    /// Waits for the event `method` (perhaps already arrived).
    fn wait_for(&mut self, method: &str) -> Value {
        if let Some(at) = self.events.iter().position(|e| e["method"] == method) {
            return self.events.remove(at);
        }
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let message = self.next_message(deadline, method);
            if message["method"] == method {
                return message;
            }
            self.events.push(message);
        }
    }

    /// Loads `url` in a `width` × `height` viewport (a phone's below 600 px) and waits for
    /// its load event.
    fn open(&mut self, url: &str, width: u32, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}),
        );
        self.events.clear();
        let navigated = self.call("Page.navigate", json!({"url": url}));
        assert!(navigated.get("errorText").is_none(), "{url}: {navigated}");
        self.wait_for("Page.loadEventFired");
    }

    /// The document as the browser holds it now.
    fn html(&mut self) -> String {
        let document = self.call("DOM.getDocument", json!({"depth": 0}));
        let html = self.call(
            "DOM.getOuterHTML",
            json!({"nodeId": document["root"]["nodeId"]}),
        );
        html["outerHTML"].as_str().unwrap().to_string()
    }

    /// The viewport as a PNG.
    fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine as _;
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap()
    }

    /// How wide the page's content is against the viewport's width (CSS pixels): wider
    /// means the reader scrolls sideways.
    fn content_and_viewport_width(&mut self) -> (f64, f64) {
        let metrics = self.call("Page.getLayoutMetrics", json!({}));
        (
            metrics["cssContentSize"]["width"].as_f64().unwrap(),
            metrics["cssLayoutViewport"]["clientWidth"]
                .as_f64()
                .unwrap(),
        )
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the browser saw, for the assertions.
struct Seen {
    /// A page whose script would have rewritten it, as loaded: scripting was off.
    probe: String,
    /// The status page and the full sync's run page.
    page: String,
    run_page: String,
    /// Screenshots: (viewport width, PNG, content width, viewport width in CSS pixels).
    shots: Vec<(u32, Vec<u8>, f64, f64)>,
}

/// Opens the status page and run `run`'s page with scripting off, and photographs the status
/// page at each of `widths` (`height` tall); in a worker thread, as the browser is driven by
/// blocking calls.
async fn look(
    browser: &Path,
    profile: &Path,
    base: &str,
    run: i64,
    widths: &[u32],
    height: u32,
) -> Seen {
    let (browser, profile, base, widths) = (
        browser.to_path_buf(),
        profile.to_path_buf(),
        base.to_string(),
        widths.to_vec(),
    );
    tokio::task::spawn_blocking(move || {
        let mut chromium = Browser::launch(&browser, &profile);
        chromium.open(
            "data:text/html,<p%20id=probe>off</p><script>document.getElementById('probe').textContent='on'</script>",
            800,
            600,
        );
        let probe = chromium.html();
        chromium.open(&format!("{base}/runs/{run}"), 1200, 1600);
        let run_page = chromium.html();
        let mut shots = Vec::new();
        let mut page = String::new();
        for width in widths {
            chromium.open(&format!("{base}/"), width, height);
            page = chromium.html();
            let png = chromium.screenshot();
            let (content, viewport) = chromium.content_and_viewport_width();
            shots.push((width, png, content, viewport));
        }
        Seen {
            probe,
            page,
            run_page,
            shots,
        }
    })
    .await
    .unwrap()
}

/// Decodes a PNG: (width, height, distinct colours, share of pixels that are not near-white).
fn picture_stats(png_bytes: &[u8]) -> (u32, u32, usize, f64) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buffer).unwrap();
    let channels = info.color_type.samples();
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "{info:?}");
    let pixels = &buffer[..info.buffer_size()];
    let mut colours = std::collections::HashSet::new();
    let mut inked = 0usize;
    for pixel in pixels.chunks_exact(channels) {
        let rgb = [
            pixel[0],
            pixel[channels.min(3) - 2],
            pixel[channels.min(3) - 1],
        ];
        colours.insert(rgb);
        if rgb.iter().any(|&c| c < 235) {
            inked += 1;
        }
    }
    let total = pixels.len() / channels;
    (
        info.width,
        info.height,
        colours.len(),
        inked as f64 / total as f64,
    )
}

/// The first agent from `from` on who holds a skill of the catalog: its index, the code and
/// the level.
fn held_skill(doc: &skillsync_sim::TenantDoc, from: usize) -> (usize, String, u8) {
    (from..doc.users.len())
        .find_map(|i| {
            doc.users[i].skills.iter().find_map(|a| {
                let d = doc.skills.iter().find(|d| d.id == a.id)?;
                (!d.name.starts_with(skillsync_sim::OWNED_PREFIX))
                    .then(|| (i, d.name.clone(), a.level))
            })
        })
        .expect("an agent holds a catalog skill")
}

fn other_level(level: u8) -> u8 {
    if level == 6 { 3 } else { 6 }
}

/// A service that has done a night's and a morning's work: a tenant of 40 agents in the
/// `Europe/Paris` zone whose HRIS files differ from it for three agents, a window around now
/// and the full sync a few seconds ahead inside it; once that sync has run, six events (two
/// applied, three rejected, one superseded) settled.
struct Scenario {
    ws: Workspace,
    served: Served,
    /// The simulator's base URL.
    sim: String,
    _stop: tokio::sync::oneshot::Sender<()>,
    doc: skillsync_sim::TenantDoc,
    /// The drifted agents (employee ids).
    drifted: Vec<String>,
}

async fn scenario(tag: &str, serve_settings: &str) -> Scenario {
    let ws = workspace(tag);
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 40,
        locales: vec!["en-us".into()],
        ..GenerateOptions::default()
    });
    write_hris_exact(&ws.0, &doc);
    let (sim, stop) = start_sim(doc.clone()).await;
    write_config(&ws.0, &sim);

    let zone = "Europe/Paris";
    let tz = jiff::tz::TimeZone::get(zone).unwrap();
    let now = jiff::Timestamp::now().to_zoned_datetime(tz);
    let hm = |z: &jiff::ZonedDateTime| z.strftime("%H:%M").to_string();
    let window = format!(
        "{}-{}",
        hm(&(&now - jiff::SignedDuration::from_hours(1))),
        hm(&(&now + jiff::SignedDuration::from_hours(1)))
    );
    let at = (&now + jiff::SignedDuration::from_secs(3))
        .strftime("%H:%M:%S")
        .to_string();
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap();
    let config = config.replacen("[limits]", &format!("timezone = \"{zone}\"\n\n[limits]"), 1);
    std::fs::write(
        ws.0.join("skillsync.toml"),
        format!(
            "{config}\n[sync]\nwindow = \"{window}\"\npropagation_window = \"10m\"\n\n\
             [serve]\nfull_sync_at = \"{at}\"\n{serve_settings}\n"
        ),
    )
    .unwrap();

    // Three agents whose HRIS level differs from the tenant's: the full sync's drift.
    let mut assignments = std::fs::read_to_string(ws.0.join("hris/assignments.csv")).unwrap();
    let mut drifted = Vec::new();
    let mut from = 0;
    for _ in 0..3 {
        let (agent, code, level) = held_skill(&doc, from);
        let line = format!("E{agent:05},{code},{level},");
        assert!(assignments.contains(&line));
        assignments = assignments.replacen(
            &line,
            &format!("E{agent:05},{code},{},", other_level(level)),
            1,
        );
        drifted.push(format!("E{agent:05}"));
        from = agent + 1;
    }
    std::fs::write(ws.0.join("hris/assignments.csv"), assignments).unwrap();

    let served = start_serve(&ws.0, &[]);
    Scenario {
        ws,
        served,
        sim,
        _stop: stop,
        doc,
        drifted,
    }
}

/// Waits (bounded) until the full sync has completed, as `/metrics` says.
async fn wait_for_full_sync(served: &Served) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, metrics) = get_text(&served.base, "/metrics").await;
        let done = metrics
            .lines()
            .find_map(|l| l.strip_prefix("skillsync_last_full_sync_timestamp_seconds "))
            .is_some_and(|v| v.trim() != "0");
        if done {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no full sync within 60 s: {}",
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two events applied, three rejected (an unknown code, an unknown agent, a removal of a code
/// the catalog does not have), one superseded (older than the HRIS files); returns once all
/// are settled.
async fn post_a_morning_of_events(s: &Scenario) {
    let (a, code_a, level_a) = held_skill(&s.doc, 20);
    let (b, code_b, level_b) = held_skill(&s.doc, a + 1);
    let now = jiff::Timestamp::now().to_string();
    let old = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(3)).to_string();
    let body = json!({"events": [
        {"id": "evt-1001", "type": "assignment.set", "occurredAt": now, "employeeId": format!("E{a:05}"), "code": code_a, "level": other_level(level_a)},
        {"id": "evt-1002", "type": "assignment.set", "occurredAt": now, "employeeId": format!("E{b:05}"), "code": code_b, "level": other_level(level_b)},
        {"id": "evt-1003", "type": "assignment.set", "occurredAt": now, "employeeId": format!("E{a:05}"), "code": "No_Such_Code", "level": 4},
        {"id": "evt-1004", "type": "assignment.set", "occurredAt": now, "employeeId": "E99999", "code": code_b, "level": 4},
        {"id": "evt-1005", "type": "assignment.removed", "occurredAt": now, "employeeId": format!("E{b:05}"), "code": "Retired_Code"},
        {"id": "evt-1006", "type": "assignment.set", "occurredAt": old, "employeeId": format!("E{b:05}"), "code": code_b, "level": 1},
    ]})
    .to_string();
    let (status, answer) = post_events(&s.served.base, &body).await;
    assert_eq!(status, 202, "{answer}");
    let ids: Vec<String> = (1001..=1006).map(|n| format!("evt-{n}")).collect();
    let states = wait_settled(&s.served, &ids).await;
    let state = |i: usize| states[i]["state"].as_str().unwrap_or_default().to_string();
    assert_eq!(
        [0, 1, 2, 3, 4, 5].map(state),
        [
            "applied",
            "applied",
            "rejected",
            "rejected",
            "rejected",
            "superseded"
        ],
        "{states:?}\n{}",
        s.served.log()
    );
}

/// The journal's runs, newest first (`skillsync history --output json`).
async fn history(dir: &Path) -> Vec<Value> {
    let out = run_with(dir, &["history", "--output", "json"]).await;
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["runs"].as_array().unwrap().clone()
}

/// The text of the element with `id` (up to its closing tag `end`), so an assertion looks
/// where the thing should be, not anywhere on the page.
fn element<'a>(html: &'a str, id: &str, end: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element {id} in the page: {html}"));
    let len = html[start..].find(end).expect("element closes");
    &html[start..start + len]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_the_run_the_queue_and_a_rejected_events_reason_in_a_browser_without_scripts()
 {
    let Some(browser) = chromium() else {
        eprintln!(
            "skipped: no Chromium (set SKILLSYNC_TEST_CHROMIUM or install /usr/bin/chromium)"
        );
        return;
    };
    let s = scenario("status-page", "").await;
    wait_for_full_sync(&s.served).await;
    post_a_morning_of_events(&s).await;
    let runs = history(&s.ws.0).await;
    let full = runs
        .iter()
        .find(|r| r["command"] == "serve-full")
        .expect("the full sync's run");
    assert_eq!(full["outcome"], "succeeded", "{full}");
    assert_eq!(full["counts"]["usersUpdated"], 3, "{full}");
    let full_id = full["id"].as_i64().unwrap();

    // What the server sends: no script anywhere, refreshing itself, headers for tables.
    let response = reqwest::get(format!("{}/", s.served.base)).await.unwrap();
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let sent = response.text().await.unwrap();
    assert!(!sent.to_ascii_lowercase().contains("<script"), "{sent}");
    assert!(
        !sent.contains("<link") && !sent.contains(" src="),
        "nothing fetched from elsewhere: {sent}"
    );
    assert!(sent.contains(r#"<meta http-equiv="refresh" content="15">"#));
    assert!(sent.contains(r#"<th scope="col">"#));

    // What the browser built from it with scripting disabled (the probe proves it was).
    let profile = s.ws.0.join("chromium-profile");
    let seen = look(
        &browser,
        &profile,
        &s.served.base,
        full_id,
        &[1200, 390],
        1600,
    )
    .await;
    assert!(
        seen.probe.contains(">off</p>"),
        "scripting was on: {}",
        seen.probe
    );
    let page = &seen.page;
    assert!(!page.to_ascii_lowercase().contains("<script"));
    let state = element(page, "state", "</section>");
    assert!(state.contains("Idle"), "{state}");
    assert!(
        state.contains("Next window opening") && state.contains("server"),
        "{state}"
    );

    // The run, linked to its page, with its counts.
    let row = element(page, &format!("run-{full_id}"), "</tr>");
    assert!(row.contains(&format!("href=\"/runs/{full_id}\"")), "{row}");
    assert!(
        row.contains("serve-full") && row.contains("succeeded"),
        "{row}"
    );
    let requests = full["counts"]["requests"].as_u64().unwrap();
    for figure in ["3".to_string(), thousands(requests)] {
        assert!(
            row.contains(&format!(">{figure}</td>")),
            "{figure} in {row}"
        );
    }

    // The queue: nothing waiting, the counts, the last events and why the rejected ones were.
    let queue = element(page, "queue", "</section>");
    for (label, value) in [
        ("Waiting (depth)", 0),
        ("Applied", 2),
        ("Rejected", 3),
        ("Superseded", 1),
    ] {
        assert!(
            queue.contains(&format!("<dt>{label}</dt><dd>{value}</dd>")),
            "{label} {value} in {queue}"
        );
    }
    for id in ["evt-1001", "evt-1002", "evt-1006"] {
        assert!(queue.contains(id), "{id} in {queue}");
    }
    let rejected = &queue[queue.find("id=\"rejected-h\"").unwrap()..];
    assert!(
        rejected.contains("evt-1003") && rejected.contains("No_Such_Code"),
        "{rejected}"
    );
    assert!(rejected.contains("E99999"), "{rejected}");

    // Settling (a 10-minute propagation window), the API budget, the drift found.
    let settling = element(page, "settling", "</section>");
    assert!(settling.contains("writes not yet settled"), "{settling}");
    let budget = element(page, "budget", "</section>");
    assert!(
        budget.contains("Since this process started") && budget.contains("This window"),
        "{budget}"
    );
    let drift = element(page, "drift", "</section>");
    assert!(drift.contains("3 agents"), "{drift}");
    for agent in &s.drifted {
        assert!(
            drift.contains(&format!("href=\"#drift-{agent}\"")),
            "{agent} in {drift}"
        );
    }

    // The run's page: its writes, before → after, and paging.
    let writes = element(&seen.run_page, "writes-h", "</section>");
    assert!(
        writes.contains("→") && writes.contains("applied"),
        "{writes}"
    );
    assert!(writes.contains("Page 1 of 1"), "{writes}");
    for agent in &s.drifted {
        let user = &s.doc.users[agent[1..].parse::<usize>().unwrap()].id;
        assert!(
            writes.contains(user.as_str()),
            "{agent}'s write in {writes}"
        );
    }
    let (status, _) = get_text(&s.served.base, &format!("/runs/{full_id}?page=2")).await;
    assert_eq!(status, 200);
    let (status, _) = get_text(&s.served.base, "/runs/999999").await;
    assert_eq!(status, 404);

    // Screenshots at desktop and phone width that show something, and a page no wider than
    // the phone (wide tables scroll inside their own box).
    for (width, png, content, viewport) in &seen.shots {
        let (w, h, colours, inked) = picture_stats(png);
        assert_eq!((w, h), (*width, 1600));
        assert!(
            content <= &(viewport + 1.0),
            "the page is {content} px wide in a {viewport} px viewport"
        );
        assert!(colours >= 50, "{colours} colours at {width} px: blank?");
        assert!(
            (0.05..0.95).contains(&inked),
            "{:.1}% of the pixels inked at {width} px",
            inked * 100.0
        );
    }
}

/// Opening the pages makes no call to the tenant: with the service idle (the full sync done,
/// every event settled), the simulator counts not one request while they are read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_the_status_page_makes_no_call_to_the_tenant() {
    let s = scenario("status-page-quiet", "").await;
    wait_for_full_sync(&s.served).await;
    post_a_morning_of_events(&s).await;
    let before = tenant_calls(&s.sim).await;
    for path in ["/", "/runs/1", "/runs/2?page=1", "/"] {
        let (status, page) = get_text(&s.served.base, path).await;
        assert_eq!(status, 200, "{path}: {page}");
    }
    assert_eq!(tenant_calls(&s.sim).await, before);
}

/// Requests the simulator has answered, all routes together.
async fn tenant_calls(sim: &str) -> u64 {
    sim_stats(sim).await["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

/// With `[serve] status_token` set, the status page asks for it (a bearer token, or basic
/// auth with it as the password); health, readiness and metrics stay open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_asks_for_its_token_when_one_is_set() {
    let ws = workspace("status-page-token");
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 5,
        locales: vec!["en-us".into()],
        ..GenerateOptions::default()
    });
    write_hris_exact(&ws.0, &doc);
    let (sim, _stop) = start_sim(doc).await;
    write_config(&ws.0, &sim);
    let config = std::fs::read_to_string(ws.0.join("skillsync.toml")).unwrap();
    std::fs::write(
        ws.0.join("skillsync.toml"),
        format!(
            "{config}
[serve]
status_token = {{ env = \"STATUS_TOKEN\" }}
"
        ),
    )
    .unwrap();
    let served = start_serve(&ws.0, &[("STATUS_TOKEN", "open-sesame")]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let get = |path: &str, auth: Option<String>| {
        let mut request = client.get(format!("{}{path}", served.base));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        async move { request.send().await.unwrap() }
    };
    let basic = |credentials: &str| {
        use base64::Engine as _;
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        ))
    };
    for path in ["/", "/runs/1"] {
        let refused = get(path, None).await;
        assert_eq!(refused.status(), 401, "{path}");
        assert!(
            refused.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic"),
            "a browser can ask for it"
        );
        assert_eq!(get(path, Some("Bearer wrong".into())).await.status(), 401);
        assert_eq!(get(path, basic("ops:wrong")).await.status(), 401);
    }
    assert_eq!(
        get("/", Some("Bearer open-sesame".into())).await.status(),
        200
    );
    assert_eq!(get("/", basic("ops:open-sesame")).await.status(), 200);
    assert_eq!(
        get("/runs/1", Some("Bearer open-sesame".into()))
            .await
            .status(),
        404
    );
    for open in ["/healthz", "/metrics"] {
        assert_eq!(get(open, None).await.status(), 200, "{open}");
    }
    let (status, answer) = post_events(&served.base, r#"{"events": []}"#).await;
    assert_ne!(status, 401, "events keep their own signature: {answer}");
}

/// Not a check: makes `docs/status-page.png`, the README's picture, from the browser test's
/// scenario (`cargo test --test status_page -- --ignored`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes docs/status-page.png"]
async fn save_the_status_page_screenshot_for_the_readme() {
    let browser = chromium().expect("Chromium, to take the screenshot");
    let s = scenario("status-page-readme", "").await;
    wait_for_full_sync(&s.served).await;
    post_a_morning_of_events(&s).await;
    let profile = s.ws.0.join("chromium-profile");
    let mut seen = look(&browser, &profile, &s.served.base, 1, &[1200], 2600).await;
    let (_, png, _, _) = seen.shots.remove(0);
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/status-page.png");
    std::fs::write(&docs, png).unwrap();
    eprintln!("wrote {}", docs.display());
}

/// `1,234`, as the page writes counts.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
