//! Times `read_desired` on a generated HRIS set: 100,000 agents × 20 assignments each
//! (2,000,000 assignment rows), built in memory so no large file is ever written.
//!
//! `cargo run --release -p skillsync-core --example hris_scale [agents] [per_agent] [runs]`

use std::time::Instant;

use skillsync_core::{Source, read_desired};

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a number"));
    let agents_n = args.next().unwrap_or(100_000);
    let per_agent = args.next().unwrap_or(20).min(40);
    let runs = args.next().unwrap_or(3);
    let locales = ["en-us", "en-gb", "de-de", "fr-fr"];

    let mut catalog = String::from("code,kind,locale,name,description,routing_profile_id\n");
    for c in 0..40 {
        let kind = if c % 2 == 0 { "skill" } else { "proficiency" };
        for l in locales {
            catalog += &format!(
                "C{c:03},{kind},{l},Code {c} {l},A description,rp-{}\n",
                c % 5
            );
        }
    }
    let mut agents = String::from("employee_id,user_id,locale\n");
    let mut assignments = String::from("employee_id,code,level,active\n");
    for a in 0..agents_n {
        agents += &format!(
            "EMP{a:06},00000000-0000-4000-8000-{a:012},{}\n",
            locales[a % 4]
        );
        for k in 0..per_agent {
            let active = if k % 7 == 0 { "false" } else { "" };
            let code = (a + k * 2) % 40;
            assignments += &format!("EMP{a:06},C{code:03},{},{active}\n", 1 + (a + k) % 10);
        }
    }
    let megabytes = (catalog.len() + agents.len() + assignments.len()) as f64 / 1e6;

    let mut best = f64::MAX;
    for run in 1..=runs {
        let cpu_start = cpu_seconds();
        let start = Instant::now();
        let loaded = read_desired(
            Source {
                name: "catalog.csv".into(),
                reader: catalog.as_bytes(),
            },
            Source {
                name: "agents.csv".into(),
                reader: agents.as_bytes(),
            },
            Source {
                name: "assignments.csv".into(),
                reader: assignments.as_bytes(),
            },
        )
        .unwrap_or_else(|problems| panic!("{}", problems[0]));
        let seconds = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds().map(|end| end - cpu_start.unwrap_or(end));
        best = best.min(seconds);
        let rows: usize = loaded.desired.assignments.values().map(|m| m.len()).sum();
        assert_eq!(loaded.desired.agents.len(), agents_n);
        assert_eq!(rows, agents_n * per_agent);
        let cpu = cpu.map_or(String::new(), |c| format!(" (cpu {c:.2} s)"));
        println!(
            "run {run}: {agents_n} agents, {rows} assignments, {megabytes:.1} MB in {seconds:.3} s{cpu}"
        );
    }
    println!("best: {best:.3} s");
}

/// User + system CPU time of this thread (Linux), so a busy machine does not skew the figure.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
