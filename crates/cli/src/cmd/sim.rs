//! `skillsync sim`: serve a simulated tenant until Ctrl-C.

use std::process::ExitCode;

use anyhow::Context;
use skillsync_sim::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, GenerateOptions, Knobs, SimConfig, TenantSource, TlsOptions,
};

use crate::args::SimArgs;
use crate::output::outln;

/// Runs the simulator in the foreground.
pub async fn run(args: SimArgs) -> anyhow::Result<ExitCode> {
    let tenant = match args.tenant.fixture {
        Some(path) => TenantSource::Fixture(path),
        None => TenantSource::Generated(GenerateOptions {
            agents: args.tenant.agents,
            skills: args.tenant.skills,
            proficiencies: args.tenant.proficiencies,
            locales: args.tenant.locales,
            profiles: args.tenant.profiles,
            seed: args.tenant.seed,
        }),
    };
    let knobs = Knobs {
        rate_limit: args.gateway.rate_limit,
        burst: args.gateway.burst,
        token_rate_limit: args.gateway.token_rate_limit,
        max_in_flight: args.gateway.max_in_flight,
        latency: args.gateway.latency,
        propagation: args.gateway.propagation,
        token_ttl: args.gateway.token_ttl,
        fault_rate: args.faults.fault_rate,
        fault_after_commit_rate: args.faults.fault_after_commit_rate,
        drop_rate: args.faults.drop_rate,
        lose_write_rate: args.faults.lose_write_rate,
        reject_write_rate: args.faults.reject_write_rate,
        other_writer: args.faults.other_writer,
    };
    let config = SimConfig {
        knobs,
        tls: args.tls.then(|| TlsOptions {
            ca_file: args.ca_file.clone(),
        }),
        ..SimConfig::new(tenant)
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (is another simulator running? try --listen 127.0.0.1:0)",
                args.listen
            )
        })?;
    let simulator = skillsync_sim::Simulator::new(listener, config)?;
    let endpoint = simulator.endpoint().clone();
    outln!(
        "skillsync sim listening on {} (API {}/api/v2) client_id={} client_secret={}",
        endpoint.base_url,
        endpoint.base_url,
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET
    );
    outln!(
        "CXone Admin API (dialect = \"cxone\"): {}{}, its own copy of the tenant (docs/sim-cxone.md)",
        endpoint.base_url,
        skillsync_sim::cxone::BASE_PATH
    );
    if let Some(ca) = &endpoint.ca_file {
        outln!(
            "TLS: trust the CA in {} (e.g. curl --cacert {0}, REQUESTS_CA_BUNDLE={0})",
            ca.display()
        );
    }
    outln!(
        "explore: {}/ (index), {}/openapi.json, {}/sim/stats; Ctrl-C stops",
        endpoint.base_url,
        endpoint.base_url,
        endpoint.base_url
    );
    simulator
        .serve(async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("stopping: letting open requests finish");
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}
