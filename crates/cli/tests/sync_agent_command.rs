//! `skillsync sync-agent`: one agent's record reconciled to the HRIS files now, against the real
//! simulator over HTTP; no other user read or written.

mod common;

use common::*;
use skillsync_sim::GenerateOptions;

/// The assignments file with `employee`'s level of `code` changed to `level`.
fn change_level(dir: &std::path::Path, employee: &str, code: &str, level: u8) {
    let path = dir.join("hris/assignments.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let prefix = format!("{employee},{code},");
    let mut changed = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| match line.strip_prefix(&prefix) {
            Some(rest) => {
                changed = true;
                let active = rest.split(',').nth(1).unwrap_or("true");
                format!("{prefix}{level},{active}")
            }
            None => line.to_string(),
        })
        .collect();
    assert!(changed, "{employee} holds no {code}");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

/// The first agent from `from` on who holds a catalog skill: its index, the code, the level.
fn catalog_skill(doc: &skillsync_sim::TenantDoc, from: usize) -> (usize, String, u8) {
    (from..doc.users.len())
        .find_map(|i| {
            doc.users[i].skills.iter().find_map(|a| {
                let d = doc.skills.iter().find(|d| d.id == a.id)?;
                (!d.name.starts_with(skillsync_sim::OWNED_PREFIX))
                    .then(|| (i, d.name.clone(), a.level))
            })
        })
        .expect("an agent with a catalog skill")
}

fn level_in(
    state: &serde_json::Value,
    doc: &skillsync_sim::TenantDoc,
    user: &str,
    code: &str,
) -> Option<u64> {
    let id = &doc.skills.iter().find(|d| d.name == code)?.id;
    state["users"]
        .as_array()?
        .iter()
        .find(|u| u["id"] == user)?["skills"]
        .as_array()?
        .iter()
        .find(|a| a["id"] == id.as_str())?["level"]
        .as_u64()
}

fn requests(stats: &serde_json::Value, method: &str, route_end: &str) -> u64 {
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["method"] == method && r["route"].as_str().is_some_and(|x| x.ends_with(route_end))
        })
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_agent_writes_that_agent_only() {
    let ws = workspace("sync-agent");
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 40,
        locales: vec!["en-us".into()],
        ..GenerateOptions::default()
    });
    write_hris_exact(&ws.0, &doc);
    let (base, _stop) = start_sim(doc.clone()).await;
    write_config(&ws.0, &base);
    // Two agents drift from the HRIS; only the first is synced.
    let (a, code_a, level_a) = catalog_skill(&doc, 0);
    let (b, code_b, level_b) = catalog_skill(&doc, a + 1);
    let new_a = if level_a == 9 { 4 } else { 9 };
    let new_b = if level_b == 9 { 4 } else { 9 };
    let employee_a = format!("E{a:05}");
    change_level(&ws.0, &employee_a, &code_a, new_a);
    change_level(&ws.0, &format!("E{b:05}"), &code_b, new_b);
    let before = sim_get(&base, "/sim/state").await;
    let stats_before = sim_stats(&base).await;

    let out = run_with(&ws.0, &["sync-agent", &employee_a, "--yes"]).await;
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");

    let after = sim_get(&base, "/sim/state").await;
    assert_eq!(
        level_in(&after, &doc, &doc.users[a].id, &code_a),
        Some(u64::from(new_a)),
        "{text}"
    );
    // Every other user exactly as before, the drifted one included.
    for (i, user) in doc.users.iter().enumerate().filter(|(i, _)| *i != a) {
        let find = |state: &serde_json::Value| {
            state["users"]
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["id"] == user.id.as_str())
                .cloned()
        };
        assert_eq!(find(&before), find(&after), "user {i} changed");
    }
    assert_eq!(
        level_in(&after, &doc, &doc.users[b].id, &code_b),
        Some(u64::from(level_b))
    );
    // Read and written one user: no listing of users, one merge update, no bulk.
    let stats = sim_stats(&base).await;
    let delta = |method: &str, route: &str| {
        requests(&stats, method, route) - requests(&stats_before, method, route)
    };
    assert_eq!(delta("GET", "/routing/users"), 0, "{stats}");
    assert_eq!(delta("PUT", "/routing/users/{userId}"), 1, "{stats}");
    assert_eq!(delta("POST", "/routing/users/bulk"), 0, "{stats}");

    // Journaled as its own run.
    let history = run(&ws.0, &["history", "--output", "json"]).await;
    let history: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert!(history.to_string().contains("sync-agent"), "{history}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_employee_is_refused_before_any_call_with_the_nearest_id() {
    let ws = workspace("sync-agent-unknown");
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: 10,
        locales: vec!["en-us".into()],
        ..GenerateOptions::default()
    });
    write_hris_exact(&ws.0, &doc);
    let (base, _stop) = start_sim(doc.clone()).await;
    write_config(&ws.0, &base);
    let stats_before = sim_stats(&base).await;
    let out = run(&ws.0, &["sync-agent", "E0003", "--yes"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no agent `E0003`"), "{stderr}");
    assert!(stderr.contains("did you mean `E00003`"), "{stderr}");
    let stats = sim_stats(&base).await;
    assert_eq!(writes_in(&stats), writes_in(&stats_before));
    assert_eq!(
        requests(&stats, "GET", "/routing/users/{userId}"),
        requests(&stats_before, "GET", "/routing/users/{userId}")
    );
}
