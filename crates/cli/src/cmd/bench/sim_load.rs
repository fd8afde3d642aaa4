//! `skillsync bench sim`: the simulator as a harness. Every other benchmark measures the client
//! against the simulator, so the simulator must not be what limits them: this one loads it alone.
//! An in-process tenant (generated, every knob off: no rate limit, latency, faults or in-flight
//! cap) is driven by N keep-alive HTTP/1.1 connections, each sending one request at a time with
//! a valid bearer token, for a fixed time after a warm-up. By default the request is a one-user
//! page of `GET /api/v2/routing/users` at a random page number, the call whose cost used to grow
//! with the tenant (issue 18); `--path` picks another.
//!
//! The load generator is a bare hyper client (no pool, no URL parsing per request), so that as
//! much of the machine as possible is left to the simulator; the two still share its cores, and
//! the figure is what they reach together.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use skillsync_sim::{GenerateOptions, Knobs};

use crate::args::BenchSimArgs;
use crate::local_tenant::LocalTenant;
use crate::output::{OutputFormat, outln};

/// Worker threads of the in-process simulator (`LocalTenant::start`).
const SIM_THREADS: usize = 2;

/// `bench sim --output json`.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SimBenchReport {
    schema_version: u32,
    agents: usize,
    connections: usize,
    /// The request as given, placeholders included.
    path: String,
    warmup_seconds: f64,
    seconds: f64,
    /// Answered 2xx within the measured time.
    requests: u64,
    requests_per_second: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    /// Requests answered with a status other than 2xx, or with no answer, in the measured time.
    errors: u64,
    /// The first error met, for the human output and the curious.
    first_error: Option<String>,
    /// Cores of this machine, shared by the simulator and the load generator.
    cores: usize,
    simulator_threads: usize,
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: &BenchSimArgs) -> anyhow::Result<std::process::ExitCode> {
    if args.agents == 0 {
        bail!("--agents must be at least 1");
    }
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if args.duration.is_zero() {
        bail!("--duration must be longer than 0 s");
    }
    if !args.path.starts_with('/') {
        bail!("--path must start with /, e.g. /api/v2/routing/users?page={{page}}&pageSize=1");
    }
    let human = args.output == OutputFormat::Human;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if human {
        outln!("skillsync bench sim");
        outln!(
            "  tenant:  {} agents, generated (seed {}); rate limit off, no latency, no faults, no in-flight cap",
            args.agents,
            args.seed
        );
        outln!(
            "  load:    {} keep-alive HTTP/1.1 connections, one request at a time each: GET {}",
            args.connections,
            args.path
        );
        outln!(
            "  machine: {cores} core(s), shared by the simulator ({SIM_THREADS} threads) and this load generator: the figure is what both reach together"
        );
    }
    let doc = skillsync_sim::generate(&GenerateOptions {
        agents: args.agents,
        seed: args.seed,
        ..GenerateOptions::default()
    });
    let ids = Ids {
        users: doc.users.iter().map(|u| u.id.clone()).collect(),
        skills: doc.skills.iter().map(|d| d.id.clone()).collect(),
        proficiencies: doc.proficiencies.iter().map(|d| d.id.clone()).collect(),
    };
    let tenant = LocalTenant::start(&doc, &Knobs::quiet()).await?;
    drop(doc);
    let result = drive(args, &tenant.base, &ids).await;
    tenant.stop().await;
    let load = result?;

    let mut latencies = load.latencies;
    latencies.sort_unstable();
    let quantile = |q: f64| -> Option<f64> {
        if latencies.is_empty() {
            return None;
        }
        let rank = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len());
        Some(latencies[rank - 1] as f64 / 1000.0)
    };
    let seconds = args.duration.as_secs_f64();
    let report = SimBenchReport {
        schema_version: 1,
        agents: args.agents,
        connections: args.connections,
        path: args.path.clone(),
        warmup_seconds: args.warmup.as_secs_f64(),
        seconds,
        requests: latencies.len() as u64,
        requests_per_second: latencies.len() as f64 / seconds,
        p50_ms: quantile(0.50),
        p99_ms: quantile(0.99),
        errors: load.errors,
        first_error: load.first_error,
        cores,
        simulator_threads: SIM_THREADS,
    };
    match args.output {
        OutputFormat::Json => crate::output::print_json(&report)?,
        OutputFormat::Human => {
            outln!(
                "  warm-up {:.1} s, measured {seconds:.1} s",
                report.warmup_seconds
            );
            outln!(
                "  requests/s  {:.0}  ({} requests)",
                report.requests_per_second,
                report.requests
            );
            match (report.p50_ms, report.p99_ms) {
                (Some(p50), Some(p99)) => {
                    outln!("  latency     p50 {p50:.2} ms, p99 {p99:.2} ms")
                }
                _ => outln!("  latency     (no request answered)"),
            }
            match &report.first_error {
                None => outln!("  errors      0"),
                Some(first) => outln!("  errors      {} (first: {first})", report.errors),
            }
        }
    }
    Ok(if report.errors == 0 && report.requests > 0 {
        crate::output::exit::ok()
    } else {
        std::process::ExitCode::FAILURE
    })
}

/// What the connections measured together.
struct Load {
    /// Microseconds of each 2xx answer within the measured time.
    latencies: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

async fn drive(args: &BenchSimArgs, base: &str, ids: &Ids) -> anyhow::Result<Load> {
    let token = token(base).await?;
    let authority = base
        .strip_prefix("http://")
        .context("the in-process simulator serves plain HTTP")?
        .to_string();
    let started = Instant::now();
    let measure_from = started + args.warmup;
    let until = measure_from + args.duration;
    let mut tasks = Vec::with_capacity(args.connections);
    for n in 0..args.connections {
        let connection = Connection {
            authority: authority.clone(),
            authorization: format!("Bearer {token}"),
            path: args.path.clone(),
            ids: ids.clone(),
            pages: args.agents as u64,
            random: SplitMix(0x5eed ^ (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        };
        tasks.push(tokio::spawn(connection.run(measure_from, until)));
    }
    let mut load = Load {
        latencies: Vec::new(),
        errors: 0,
        first_error: None,
    };
    for task in tasks {
        let one = task.await.context("a load connection panicked")?;
        load.latencies.extend(one.latencies);
        load.errors += one.errors;
        if load.first_error.is_none() {
            load.first_error = one.first_error;
        }
    }
    Ok(load)
}

async fn token(base: &str) -> anyhow::Result<String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let answer: Value = reqwest::Client::new()
        .post(format!("{base}/api/v2/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", skillsync_sim::DEMO_CLIENT_ID),
            ("client_secret", skillsync_sim::DEMO_CLIENT_SECRET),
        ])
        .send()
        .await?
        .error_for_status()
        .context("the simulator refused the demo client a token")?
        .json()
        .await?;
    answer["access_token"]
        .as_str()
        .map(str::to_string)
        .context("the token answer has no access_token")
}

/// One keep-alive connection and what it sends.
struct Connection {
    authority: String,
    authorization: String,
    path: String,
    ids: Ids,
    pages: u64,
    random: SplitMix,
}

impl Connection {
    /// Sends requests one after another until `until`, counting those sent from `measure_from`;
    /// a connection that fails is opened again.
    async fn run(mut self, measure_from: Instant, until: Instant) -> Load {
        let mut load = Load {
            latencies: Vec::new(),
            errors: 0,
            first_error: None,
        };
        let mut sender: Option<http1::SendRequest<Empty<Bytes>>> = None;
        loop {
            let sent = Instant::now();
            if sent >= until {
                break;
            }
            let uri = self.next_uri();
            let outcome = match sender.as_mut() {
                Some(open) => self.send(open, &uri).await,
                None => match self.connect().await {
                    Ok(mut open) => {
                        let outcome = self.send(&mut open, &uri).await;
                        sender = Some(open);
                        outcome
                    }
                    Err(error) => Err(format!("cannot connect: {error}")),
                },
            };
            let done = Instant::now();
            if outcome.is_err() {
                sender = None;
            }
            if sent < measure_from || done > until {
                continue;
            }
            match outcome {
                Ok(()) => load
                    .latencies
                    .push(u32::try_from((done - sent).as_micros()).unwrap_or(u32::MAX)),
                Err(error) => {
                    load.errors += 1;
                    load.first_error.get_or_insert(error);
                }
            }
        }
        load
    }

    async fn connect(&self) -> anyhow::Result<http1::SendRequest<Empty<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(&self.authority).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// One request; `Err` says why it did not get a 2xx answer.
    async fn send(
        &self,
        sender: &mut http1::SendRequest<Empty<Bytes>>,
        uri: &str,
    ) -> Result<(), String> {
        sender.ready().await.map_err(|e| e.to_string())?;
        let request = hyper::Request::get(uri)
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::AUTHORIZATION, &self.authorization)
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if status.is_success() {
            Ok(())
        } else {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            Err(format!("{status}: {text}"))
        }
    }

    /// The request's path with its placeholders filled.
    fn next_uri(&mut self) -> String {
        let mut uri = self.path.clone();
        if uri.contains("{page}") {
            let page = 1 + self.random.next() % self.pages;
            uri = uri.replace("{page}", &page.to_string());
        }
        for (placeholder, ids) in [
            ("{userId}", &self.ids.users),
            ("{skillId}", &self.ids.skills),
            ("{proficiencyId}", &self.ids.proficiencies),
        ] {
            if uri.contains(placeholder) && !ids.is_empty() {
                let index = (self.random.next() % ids.len() as u64) as usize;
                uri = uri.replace(placeholder, &ids[index]);
            }
        }
        uri
    }
}

/// The tenant's ids, for the placeholders of `--path`.
#[derive(Clone)]
struct Ids {
    users: Arc<[String]>,
    skills: Arc<[String]>,
    proficiencies: Arc<[String]>,
}

/// SplitMix64: a different page each request, reproducibly, without a dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
