//! `skillsync demo`: the whole job on a fresh machine with nothing to configure. An in-process
//! simulator with a generated tenant (mild faults, another integration writing), HRIS files
//! that match it with deliberate differences, then plan, apply, and a second plan that shows
//! nothing left to do.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use skillsync_sim::{DurationRange, GenerateOptions, Knobs, Rate, TenantDoc};

use crate::args::{AdoptArgs, ApplyArgs, CommonArgs, DemoArgs, PlanArgs};
use crate::local_tenant::{LocalTenant, write_config};
use crate::output::{OutputFormat, exit, outln};

/// Runs the demo.
pub async fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("skillsync-demo-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("hris"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let doc = skillsync_sim::generate(&GenerateOptions {
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
    let tenant = LocalTenant::start(&doc, &knobs).await?;
    let base = tenant.base.clone();
    write_config(&dir, &base, "skillsync demo", 10.0, 20)?;

    outln!("skillsync demo");
    outln!(
        "  tenant:  simulated at {base}: {} agents in en-us, de-de, fr-fr; 10 requests/s, burst 20, 20–80 ms latency;",
        args.agents
    );
    outln!(
        "           2% faults before commit, 2% after commit, 1% dropped connections; another integration writing 5×/s"
    );
    outln!(
        "  HRIS:    {}/hris/{{catalog,agents,assignments}}.csv (a new code, level changes, adds, a few removals)",
        dir.display()
    );
    outln!(
        "  config:  {}/skillsync.toml (journal: skillsync.db beside it)",
        dir.display()
    );
    let common = CommonArgs {
        config: dir.join("skillsync.toml"),
        output: OutputFormat::Human,
        color: args.color,
        summary: true,
    };

    // The sample tenant's definitions were made by the script skillsync replaces: the demo
    // takes them over, as a first run against an existing tenant does with `--adopt`.
    let adopt = AdoptArgs {
        adopt: vec!["all".into()],
    };
    let plan_args = PlanArgs {
        common: common.clone(),
        adopt: adopt.clone(),
        out: None,
    };
    outln!("\n1. plan --adopt all (read-only)");
    let planned = super::plan::run(&plan_args).await?;
    outln!("\n2. apply --adopt all");
    let applied = super::apply::run(&ApplyArgs {
        common: CommonArgs { ..common.clone() },
        yes: true,
        max_removals: None,
        allow_empty_skills: false,
        now: false,
        wait: None,
        adopt,
    })
    .await?;
    outln!("\n3. plan again");
    let replanned = super::plan::run(&PlanArgs {
        common,
        adopt: AdoptArgs::default(),
        out: None,
    })
    .await?;

    let stats = tenant.inspect("/sim/stats").await.ok();
    let survived = tenant
        .other_writer_losses()
        .await
        .ok()
        .map(|l| (l.writes, l.lost));
    tenant.stop().await;
    if let (Some(stats), Some((writes, lost))) = (stats, survived) {
        outln!(
            "\nThe tenant saw {} requests; {} duplicate definitions were created; the other integration made {writes} writes \
             meanwhile, and {lost} of its assignments were lost.",
            stats["totalRequests"],
            stats["duplicatesCreated"]
        );
    }
    let ok = planned == exit::changes() && applied == exit::ok() && replanned == exit::ok();
    outln!(
        "{}",
        if ok {
            "\nDone: the tenant matches the HRIS."
        } else {
            "\nThe demo did not converge; see above."
        }
    );
    Ok(if ok { exit::ok() } else { exit::error() })
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
