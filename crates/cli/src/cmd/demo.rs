//! `skillsync demo`: the whole job on a fresh machine with nothing to configure. An in-process
//! simulator with a generated tenant (mild faults, another integration writing), HRIS files
//! that match it with deliberate differences, then plan, apply, and a second plan that shows
//! nothing left to do.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use sim::{DurationRange, GenerateOptions, Knobs, Rate, SimConfig, TenantDoc, TenantSource};

use crate::args::{ApplyArgs, CommonArgs, DemoArgs};
use crate::output::{OutputFormat, exit};

/// Runs the demo.
pub async fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("skillsync-demo-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("hris"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let doc = sim::generate(&GenerateOptions {
        agents: args.agents,
        skills: 12,
        proficiencies: 5,
        locales: vec!["en-us".into(), "de-de".into(), "fr-fr".into()],
        profiles: 4,
        seed: args.seed,
    });
    write_hris(&dir, &doc)?;

    let knobs = Knobs {
        rate_limit: Rate::PerSecond(10.0),
        burst: 20,
        max_in_flight: 10,
        latency: DurationRange::between_millis(20, 80),
        fault_rate: 0.02,
        fault_after_commit_rate: 0.02,
        drop_rate: 0.01,
        other_writer: 5.0,
        ..Knobs::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let simulator = sim::Simulator::new(
        listener,
        SimConfig {
            knobs,
            ..SimConfig::new(TenantSource::Doc(Box::new(doc)))
        },
    )?;
    let base = simulator.endpoint().base_url.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(simulator.serve(async {
        let _ = stopped.await;
    }));
    write_config(&dir, &base)?;

    println!("skillsync demo");
    println!(
        "  tenant:  simulated at {base}: {} agents in en-us, de-de, fr-fr; 10 requests/s, burst 20, 20–80 ms latency;",
        args.agents
    );
    println!(
        "           2% faults before commit, 2% after commit, 1% dropped connections; another integration writing 5×/s"
    );
    println!(
        "  HRIS:    {}/hris/{{catalog,agents,assignments}}.csv (a new code, level changes, adds, a few removals)",
        dir.display()
    );
    println!(
        "  config:  {}/skillsync.toml (journal: skillsync.db beside it)",
        dir.display()
    );
    let common = CommonArgs {
        config: dir.join("skillsync.toml"),
        output: OutputFormat::Human,
        color: args.color,
        summary: true,
    };

    println!("\n1. plan (read-only)");
    let planned = super::plan::run(&common).await?;
    println!("\n2. apply");
    let applied = super::apply::run(&ApplyArgs {
        common: CommonArgs { ..common.clone() },
        yes: true,
        max_removals: None,
        allow_empty_skills: false,
        now: false,
    })
    .await?;
    println!("\n3. plan again");
    let replanned = super::plan::run(&common).await?;

    let stats = sim_json(&base, "/sim/stats").await;
    let survived = other_writer_survived(&base).await;
    let _ = stop.send(());
    let _ = server.await;
    if let (Some(stats), Some((writes, lost))) = (stats, survived) {
        println!(
            "\nThe tenant saw {} requests; {} duplicate definitions were created; the other integration made {writes} writes \
             meanwhile, and {lost} of its assignments were lost.",
            stats["totalRequests"], stats["duplicatesCreated"]
        );
    }
    let ok = planned == exit::changes() && applied == exit::ok() && replanned == exit::ok();
    println!(
        "{}",
        if ok {
            "\nDone: the tenant matches the HRIS."
        } else {
            "\nThe demo did not converge; see above."
        }
    );
    Ok(if ok { exit::ok() } else { exit::error() })
}

/// GETs a `/sim` route with a plain HTTP/1.1 request: the demo's simulator is on loopback, and
/// one call does not justify a second HTTP client.
async fn sim_json(base: &str, path: &str) -> Option<serde_json::Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.strip_prefix("http://")?;
    let mut stream = tokio::net::TcpStream::connect(host).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.ok()?;
    let at = response.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    serde_json::from_slice(&response[at..]).ok()
}

/// Checks every assignment the other integration last wrote against the tenant now: returns
/// its write count and how many of its assignments are missing or changed.
async fn other_writer_survived(base: &str) -> Option<(u64, usize)> {
    let log = sim_json(base, "/sim/other-writer").await?;
    let state = sim_json(base, "/sim/state").await?;
    let users: BTreeMap<&str, &serde_json::Value> = state["users"]
        .as_array()?
        .iter()
        .filter_map(|u| Some((u["id"].as_str()?, u)))
        .collect();
    let mut lost = 0;
    for (user_id, written) in log["users"].as_object()? {
        let now = users.get(user_id.as_str())?;
        for list in ["skills", "proficiencies"] {
            for assignment in written[list].as_array()? {
                if !now[list].as_array()?.contains(assignment) {
                    lost += 1;
                }
            }
        }
    }
    Some((log["writes"].as_u64()?, lost))
}

fn write_config(dir: &Path, base: &str) -> anyhow::Result<()> {
    std::fs::write(
        dir.join("client-secret.txt"),
        format!("{}\n", sim::DEMO_CLIENT_SECRET),
    )?;
    let config = format!(
        r#"# Written by `skillsync demo`. Secrets come from a file (or {{ env = "NAME" }}), never argv.
[tenant]
api_base = "{base}/api/v2"
client_id = "{id}"
client_secret = {{ file = "client-secret.txt" }}

[limits]
requests_per_second = 10
burst = 20
max_in_flight = 10

[sync]
bulk_threshold = 50
bulk_batch_size = 100
propagation_window = "30s"
max_removals = "10%"

[source]
catalog = "hris/catalog.csv"
agents = "hris/agents.csv"
assignments = "hris/assignments.csv"
"#,
        id = sim::DEMO_CLIENT_ID
    );
    std::fs::write(dir.join("skillsync.toml"), config)?;
    Ok(())
}

/// HRIS files describing the tenant, with differences on purpose: a new code in every locale
/// assigned to every 6th agent, every 4th agent with one level changed, every 9th losing one
/// assignment.
fn write_hris(dir: &Path, doc: &TenantDoc) -> anyhow::Result<()> {
    let (mut catalog, codes) = super::bench::scenario::catalog_csv(doc)?;
    let profile = &doc.profiles[0].id;
    for locale in ["en-us", "de-de", "fr-fr"] {
        writeln!(
            catalog,
            "Claims_Intake,skill,{locale},Claims_Intake,Claims intake ({locale}),{profile}"
        )?;
    }
    let mut agents = String::from("employee_id,user_id,locale\n");
    let mut assignments = String::from("employee_id,code,level,active\n");
    for (i, user) in doc.users.iter().enumerate() {
        let employee = format!("E{:05}", i + 1);
        writeln!(agents, "{employee},{},{}", user.id, user.locale)?;
        let mut rows: Vec<(&str, u8, bool)> = user
            .skills
            .iter()
            .chain(&user.proficiencies)
            .filter_map(|a| {
                codes
                    .get(a.id.as_str())
                    .map(|code| (*code, a.level, a.active))
            })
            .collect();
        if i % 4 == 0 && !rows.is_empty() {
            rows[0].1 = rows[0].1 % 10 + 1;
        }
        if i % 9 == 0 && rows.len() > 1 {
            rows.pop();
        }
        if i % 6 == 0 {
            rows.push(("Claims_Intake", 6, true));
        }
        for (code, level, active) in rows {
            writeln!(assignments, "{employee},{code},{level},{active}")?;
        }
    }
    std::fs::write(dir.join("hris/catalog.csv"), catalog)?;
    std::fs::write(dir.join("hris/agents.csv"), agents)?;
    std::fs::write(dir.join("hris/assignments.csv"), assignments)?;
    Ok(())
}
