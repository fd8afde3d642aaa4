//! `[sync] window` end to end: `apply` outside it refuses before touching the tenant unless
//! `--now`, `assign` is not bound to it, and `validate` points at a bad window or time zone.
//!
//! Windows are placed hours away from the current time, so a test never runs near a boundary.

mod common;

use std::path::Path;

use common::*;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ZonedDateTime};
use skillsync_sim::{GenerateOptions, Knobs};

/// A half-hour offset and no daylight saving: the arithmetic is visibly not UTC's, and the test
/// cannot meet a clock change.
const TENANT_ZONE: &str = "Asia/Kolkata";

fn tenant() -> skillsync_sim::TenantDoc {
    skillsync_sim::generate(&GenerateOptions {
        agents: 40,
        seed: 7,
        ..GenerateOptions::default()
    })
}

/// The top of the hour `hours_from_now` ahead, in the tenant's zone.
fn hour_ahead(hours_from_now: i64) -> ZonedDateTime {
    let zone = TimeZone::get(TENANT_ZONE).unwrap();
    let later = Timestamp::now() + SignedDuration::from_hours(hours_from_now);
    let local = later.to_zoned_datetime(zone);
    local
        .with()
        .minute(0)
        .second(0)
        .subsec_nanosecond(0)
        .build()
        .unwrap()
}

/// `[sync] window` from `opens` for `hours` hours, in the tenant's zone.
fn write_window_config(dir: &Path, base: &str, opens: &ZonedDateTime, hours: i8) {
    write_config(dir, base);
    let path = dir.join("skillsync.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    let closes = (opens.hour() + hours) % 24;
    let config = config.replace(
        "[limits]",
        &format!("timezone = \"{TENANT_ZONE}\"\n\n[limits]"),
    ) + &format!(
        "\n[sync]\nwindow = \"{:02}:00-{closes:02}:00\"\n",
        opens.hour()
    );
    std::fs::write(path, config).unwrap();
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_outside_the_window_refuses_without_writing_and_applies_with_now() {
    let ws = workspace("window-outside");
    let doc = tenant();
    let expected = write_hris(&ws.0, &doc);
    assert!(expected.users_changed > 0, "there is something to apply");
    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    // Now is five to six hours before it opens and more than a day after the last one closed.
    let opens = hour_ahead(6);
    write_window_config(&ws.0, &base, &opens, 1);

    let planned = run(&ws.0, &["plan", "--summary"]).await;
    assert_eq!(
        planned.status.code(),
        Some(2),
        "plan is not bound to the window"
    );
    assert!(
        text(&planned.stderr).contains("`apply` would refuse now: outside the sync window"),
        "plan mentions the window: {}",
        text(&planned.stderr)
    );

    let refused = run(&ws.0, &["apply", "--yes"]).await;
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    let next_start = opens.strftime("%Y-%m-%d %H:%M %Z").to_string();
    assert!(
        stderr.contains("outside the sync window")
            && stderr.contains(TENANT_ZONE)
            && stderr.contains(&format!("the next one opens {next_start} ("))
            && stderr.contains("local time")
            && stderr.contains("--now"),
        "the refusal names the next start in tenant and local time: {stderr}"
    );
    let stats = sim_get(&base, "/sim/stats").await;
    assert_eq!(writes_in(&stats), 0, "refused before any write: {stats}");

    let applied = run(&ws.0, &["apply", "--yes", "--now"]).await;
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{}\n{}",
        text(&applied.stdout),
        text(&applied.stderr)
    );
    let stats = sim_get(&base, "/sim/stats").await;
    assert!(writes_in(&stats) > 0, "--now applies: {stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_inside_the_window_needs_no_flag() {
    let ws = workspace("window-inside");
    let doc = tenant();
    write_hris(&ws.0, &doc);
    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    // Opened two to three hours ago, closes two to three hours from now.
    write_window_config(&ws.0, &base, &hour_ahead(-2), 5);

    let applied = run(&ws.0, &["apply", "--yes"]).await;
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{}\n{}",
        text(&applied.stdout),
        text(&applied.stderr)
    );
    assert!(writes_in(&sim_get(&base, "/sim/stats").await) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_is_not_bound_to_the_window() {
    let ws = workspace("window-assign");
    let doc = tenant();
    write_hris(&ws.0, &doc);
    let user = &doc.users[1];
    let skill = doc
        .skills
        .iter()
        .find(|d| d.locale == user.locale && !d.name.starts_with(skillsync_sim::OWNED_PREFIX))
        .unwrap()
        .name
        .clone();
    let (base, _stop) = start_sim_with(doc, Knobs::quiet()).await;
    write_window_config(&ws.0, &base, &hour_ahead(6), 1);

    let dir = ws.0.clone();
    let assigned =
        tokio::task::spawn_blocking(move || skillsync(&dir, &["assign", "E00001", &skill, "7"]))
            .await
            .unwrap();
    assert_eq!(
        assigned.status.code(),
        Some(0),
        "{}",
        text(&assigned.stderr)
    );
    assert!(writes_in(&sim_get(&base, "/sim/stats").await) > 0);
}

#[test]
fn validate_points_at_a_bad_window_and_an_unknown_time_zone() {
    let ws = workspace("window-validate");
    write_config(&ws.0, "http://127.0.0.1:9/unused");
    let path = ws.0.join("skillsync.toml");
    let config = std::fs::read_to_string(&path)
        .unwrap()
        .replace("[limits]", "timezone = \"Europe/Berln\"\n\n[limits]")
        + "\n[sync]\nwindow = \"02:00-25:00\"\n";
    std::fs::write(&path, &config).unwrap();
    let line_of = |needle: &str| config.lines().position(|l| l.contains(needle)).unwrap() + 1;

    let output = skillsync(&ws.0, &["validate"]);
    let stdout = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let window_line = format!("skillsync.toml:{}:", line_of("window ="));
    let zone_line = format!("skillsync.toml:{}:", line_of("timezone ="));
    assert!(
        stdout.contains(&window_line) && stdout.contains("`25:00`"),
        "the window's line: {stdout}"
    );
    assert!(
        stdout.contains(&zone_line) && stdout.contains("Europe/Berln"),
        "the time zone's line: {stdout}"
    );
}
