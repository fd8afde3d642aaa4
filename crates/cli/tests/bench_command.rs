//! `skillsync bench` reports figures that hold together: no timings are asserted (benchmarks
//! measure speed, tests check correctness), only that each run did what its scenario asks and
//! that the lower bound really is one.

mod common;

use serde_json::Value;

/// Runs the benchmark with its files in a workspace removed afterwards.
fn bench(tag: &str, args: &[&str]) -> Value {
    let dir = common::workspace(tag);
    let files = dir.0.join("bench");
    let mut args = args.to_vec();
    args.extend(["--dir", files.to_str().expect("a UTF-8 temp path")]);
    let output = common::skillsync(&dir.0, &args);
    assert!(
        output.status.success(),
        "bench failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("--output json prints one JSON document")
}

#[test]
fn sync_bench_applies_the_change_set_within_reach_of_the_bound_and_resyncs_with_reads_only() {
    let report = bench(
        "bench-sync",
        &[
            "bench",
            "sync",
            "--agents",
            "1200",
            "--changed",
            "25%",
            "--new-codes",
            "1",
            "--rate-limit",
            "off",
            "--latency",
            "0ms",
            "--naive-users",
            "3",
            "--output",
            "json",
        ],
    );
    assert_eq!(report["schemaVersion"], 1);
    let scenario = &report["scenario"];
    assert_eq!(scenario["changedAgents"], 300);
    assert_eq!(
        scenario["definitionsToCreate"], 2,
        "one code in two locales"
    );

    let apply = &report["apply"];
    let bound = &report["lowerBound"];
    let calls = |v: &Value| v["calls"].as_u64().expect("a count");
    assert!(
        calls(apply) >= calls(bound),
        "no client can beat the lower bound: {apply} vs {bound}"
    );
    assert_eq!(apply["throttled"], 0);
    let kind = |v: &Value, k: &str| v["byKind"][k].as_u64().unwrap_or(0);
    assert_eq!(
        kind(apply, "POST /api/v2/routing/users/bulk"),
        3,
        "300 users in bulks of 100"
    );
    assert_eq!(kind(apply, "POST /api/v2/routing/skills"), 2);
    assert_eq!(
        kind(apply, "GET /api/v2/routing/users"),
        6,
        "1,200 users in pages of 500, read before writing and read back after"
    );
    assert_eq!(
        kind(apply, "GET /api/v2/routing/users/{userId}"),
        0,
        "300 users are cheaper to read back in pages than one by one"
    );
    assert_eq!(
        apply["writes"], bound["writes"],
        "no write beyond the bound's"
    );

    // The same apply as a process of its own, on the reset tenant: the same calls.
    let process = &report["applyProcess"];
    assert_eq!(process["calls"], apply["calls"], "{process}");
    assert_eq!(process["byKind"], apply["byKind"], "{process}");
    assert!(process["seconds"].as_f64().unwrap() > 0.0, "{process}");
    if cfg!(target_os = "linux") {
        let peak = process["peakRssMib"].as_f64().expect("measured on Linux");
        assert!(peak > 1.0, "{process}");
        assert!(process["cpuSeconds"].as_f64().unwrap() > 0.0, "{process}");
    }
    let journal = &report["applyJournal"];
    let share = journal["share"].as_f64().expect("the journal's share");
    assert!(share > 0.0 && share < 1.0, "{journal}");
    assert!(
        (share
            - journal["cpuSeconds"].as_f64().unwrap()
                / journal["clientCpuSeconds"].as_f64().unwrap())
        .abs()
            < 1e-9,
        "{journal}"
    );

    let resync = &report["resync"];
    assert_eq!(
        resync["writes"], 0,
        "a re-sync with nothing to change writes nothing"
    );
    assert!(report["resyncCallRatio"].as_f64().unwrap() > 0.0);
    assert_eq!(kind(resync, "GET /api/v2/routing/users"), 3);

    let naive = &report["naive"];
    assert_eq!(naive["usersRun"], 3);
    assert_eq!(naive["extrapolated"], true);
    assert_eq!(naive["failed"], 0);
    assert_eq!(
        naive["calls"],
        1 + 2 + 3 * 2,
        "the script: a token, its creates, then a GET and a PUT per user"
    );
}

/// `--limit off` is `--rate-limit off --latency 0ms`, and says so in the scenario; with either
/// of those it is refused as a usage error.
#[test]
fn limit_off_lifts_the_rate_limit_and_the_latency() {
    let report = bench(
        "bench-sync-limit-off",
        &[
            "bench",
            "sync",
            "--agents",
            "200",
            "--limit",
            "off",
            "--naive-users",
            "0",
            "--output",
            "json",
        ],
    );
    let scenario = &report["scenario"];
    assert_eq!(scenario["rateLimitPerSecond"], Value::Null, "{scenario}");
    assert_eq!(
        scenario["latencyMs"],
        serde_json::json!([0, 0]),
        "{scenario}"
    );
    assert_eq!(report["apply"]["throttled"], 0);

    let dir = common::workspace("bench-limit-conflict");
    for other in [["--rate-limit", "5/s"], ["--latency", "10ms"]] {
        let output = common::skillsync(
            &dir.0,
            &["bench", "sync", "--limit", "off", other[0], other[1]],
        );
        assert_eq!(output.status.code(), Some(1), "{other:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("cannot be used with"),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn plan_bench_plans_every_changed_agent_and_reports_its_peak() {
    let report = bench(
        "bench-plan",
        &[
            "bench",
            "plan",
            "--agents",
            "2000",
            "--per-agent",
            "12",
            "--output",
            "json",
        ],
    );
    assert_eq!(report["schemaVersion"], 1);
    assert_eq!(report["assignmentRows"], 24_000);
    assert_eq!(report["usersChanged"], 600, "three agents in ten differ");
    assert!(report["totalSeconds"].as_f64().expect("seconds") > 0.0);
    if cfg!(target_os = "linux") {
        assert!(report["peakRssMib"].as_f64().expect("measured on Linux") > 0.0);
    }
}

#[test]
fn bad_bench_arguments_are_refused_before_anything_runs() {
    let dir = common::workspace("bench-args");
    let output = common::skillsync(&dir.0, &["bench", "sync", "--changed", "130%"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("between 0% and 100%"));
    let output = common::skillsync(&dir.0, &["bench", "plan", "--per-agent", "41"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--per-agent"));
}

/// Under faults, drops, short tokens and the other integration, the chaos bench converges,
/// loses none of the other integration's assignments and creates no duplicate; it exits 1
/// when any rate does not, so a regression there fails this test.
#[test]
fn chaos_bench_converges_without_losing_the_other_integrations_writes() {
    let report = bench(
        "bench-chaos",
        &[
            "bench",
            "chaos",
            "--agents",
            "300",
            "--rates",
            "40",
            "--token-ttl",
            "3s",
            "--fault-rate",
            "0.05",
            "--fault-after-commit-rate",
            "0.05",
            "--drop-rate",
            "0.02",
            "--other-writer",
            "20",
            "--output",
            "json",
        ],
    );
    let row = &report["rates"][0];
    assert_eq!(row["converged"], true, "{row:#}");
    assert_eq!(row["otherWriterAssignmentsLost"], 0, "{row:#}");
    assert_eq!(row["duplicatesCreated"], 0, "{row:#}");
    assert!(row["otherWriterWrites"].as_u64().unwrap() > 0, "{row:#}");
    assert!(
        row["calls"].as_u64().unwrap() >= row["boundCalls"].as_u64().unwrap(),
        "the bound is a lower bound: {row:#}"
    );
}

/// The service's benchmark runs `skillsync serve` as a real process: every event sent is
/// answered 202 and counted by the service, the skill events are applied, and the proficiency
/// events go in bulk, no more bulk writes than ceil(agents / 100) per flush.
#[test]
fn serve_bench_loses_no_event_and_writes_proficiencies_in_bulk() {
    let report = bench(
        "bench-serve",
        &[
            "bench",
            "serve",
            "--agents",
            "40",
            "--events",
            "200",
            "--batch",
            "1,20",
            "--connections",
            "4",
            "--latency-events",
            "2",
            "--latency-pace",
            "50ms",
            "--rate-limit",
            "200",
            "--burst",
            "50",
            "--proficiency-events",
            "40",
            "--proficiency-agents",
            "20",
            "--proficiency-batch",
            "10",
            "--proficiency-flush",
            "200ms",
            "--output",
            "json",
        ],
    );
    assert_eq!(report["schemaVersion"], 1);
    assert_eq!(report["sound"], true, "{report:#}");
    let intake = report["intake"].as_array().expect("one row per batch size");
    assert_eq!(intake.len(), 2);
    for row in intake {
        assert_eq!(row["accepted"], 200, "{row:#}");
        assert_eq!(row["lost"], 0, "{row:#}");
        assert_eq!(
            row["serviceAccepted"], 200,
            "the service counted them: {row:#}"
        );
        assert!(row["eventsPerSecond"].as_f64().expect("a rate") > 0.0);
    }
    assert_eq!(intake[1]["requests"], 10, "200 events in requests of 20");

    let latency = &report["latency"];
    assert_eq!(latency["events"], 2);
    assert_eq!(latency["notApplied"], serde_json::json!([]), "{latency:#}");
    assert!(latency["p50Ms"].as_f64().expect("a latency") > 0.0);
    assert_eq!(
        latency["writesPerEvent"], 1.0,
        "one merge update each: {latency:#}"
    );

    let proficiencies = &report["proficiencies"];
    assert_eq!(proficiencies["states"]["applied"], 40, "{proficiencies:#}");
    assert_eq!(proficiencies["tenantMismatches"], 0, "{proficiencies:#}");
    let bulk = proficiencies["bulkWrites"].as_u64().expect("a count");
    assert!(bulk >= 1, "{proficiencies:#}");
    assert!(
        bulk <= proficiencies["bulkBound"].as_u64().expect("a count"),
        "at most ceil(agents / 100) bulk writes per flush: {proficiencies:#}"
    );
    assert_eq!(proficiencies["singleWrites"], 0, "{proficiencies:#}");
    assert!(
        !proficiencies["flushes"]
            .as_array()
            .expect("runs")
            .is_empty()
    );
}

/// `bench sim` loads the in-process simulator alone: every request of the measured second is
/// answered (one-user pages of /routing/users by default, any route with `--path`), and its
/// figures hold together.
#[test]
fn sim_bench_answers_every_request_and_reports_its_rate_and_latency() {
    let dir = common::workspace("bench-sim");
    for path in [
        None,
        Some("/api/v2/routing/users?skillId={skillId}&page=1&pageSize=5"),
        Some("/api/v2/users/{userId}"),
    ] {
        let mut args = vec![
            "bench",
            "sim",
            "--agents",
            "300",
            "--connections",
            "4",
            "--warmup",
            "100ms",
            "--duration",
            "1s",
            "--output",
            "json",
        ];
        if let Some(path) = path {
            args.extend(["--path", path]);
        }
        let output = common::skillsync(&dir.0, &args);
        assert!(
            output.status.success(),
            "bench sim failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let report: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
        assert_eq!(report["schemaVersion"], 1);
        assert_eq!(report["agents"], 300);
        assert_eq!(report["connections"], 4);
        assert_eq!(report["errors"], 0, "{report:#}");
        assert_eq!(report["firstError"], Value::Null, "{report:#}");
        let requests = report["requests"].as_u64().expect("a count");
        assert!(requests > 0, "{report:#}");
        let rate = report["requestsPerSecond"].as_f64().expect("a rate");
        assert!((rate - requests as f64 / 1.0).abs() < 1e-6, "{report:#}");
        let (p50, p99) = (report["p50Ms"].as_f64(), report["p99Ms"].as_f64());
        assert!(
            p50.expect("a latency") <= p99.expect("a latency"),
            "{report:#}"
        );
        if let Some(path) = path {
            assert_eq!(report["path"], path);
        }
    }
    // A route that answers 404 is an error, and the run exits 1 saying so.
    let output = common::skillsync(
        &dir.0,
        &[
            "bench",
            "sim",
            "--agents",
            "10",
            "--connections",
            "1",
            "--warmup",
            "0s",
            "--duration",
            "200ms",
            "--path",
            "/api/v2/routing/users/nobody",
        ],
    );
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("404"), "{text}");
    // Arguments that measure nothing are refused before a tenant is generated.
    for (flag, value) in [("--connections", "0"), ("--path", "api/v2/users")] {
        let output = common::skillsync(&dir.0, &["bench", "sim", flag, value]);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(flag), "{stderr}");
    }
}
