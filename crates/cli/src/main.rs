//! `skillsync`: keeps CXone agent skills and proficiencies in step with the HR system.
//!
//! This file only parses arguments and dispatches; each command lives in `cmd/`.
// Input problems are returned by value once per failed load, never in a loop; boxing them
// would only add noise.
#![allow(clippy::result_large_err)]

mod args;
mod cmd;
mod config;
mod inputs;
mod local_tenant;
mod output;
mod saved_plan;
mod serve;
mod terminal;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc asks the kernel for transparent huge pages, so the first touch of each 2 MiB region
/// of its heaps zeroes the whole region: with a heap per thread, a 10,000-agent re-sync that
/// uses 42 MiB had 80 MiB resident and spent three times its own CPU in the kernel zeroing
/// pages, and a 100,000-agent apply up to 1 s (docs/BENCHMARKS.md). A run touches most of its
/// memory once, so huge pages save it little; the service, which runs for days, keeps the
/// smaller resident set.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and only sets the process's (and its
    // children's) policy for memory faulted in from now on.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// 100,000 agents are some 5 million small allocations (ids, lists, plan entries): mimalloc
/// makes and frees them in about half the time of the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    no_transparent_huge_pages();
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage(&error),
    };
    let log_format = match &cli.command {
        args::Command::Serve(serve) => Some(serve.log_format),
        _ => None,
    };
    init_tracing(cli.verbose, log_format);
    output::set_quiet(cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            args::Command::Sim(sim_args) => cmd::sim::run(*sim_args).await,
            args::Command::Validate(common) => cmd::validate::run(&common),
            args::Command::Plan(plan_args) => cmd::plan::run(&plan_args).await,
            args::Command::Apply(apply_args) => match &apply_args.plan_file {
                Some(file) => cmd::apply::run_saved(&apply_args.apply, file).await,
                None => cmd::apply::run(&apply_args.apply).await,
            },
            args::Command::SyncAgent(sync_args) => cmd::apply::run_agents(&sync_args).await,
            args::Command::Init(init_args) => cmd::init::run(&init_args),
            args::Command::Completions { shell } => {
                let mut command = <args::Cli as clap::CommandFactory>::command();
                let mut script = Vec::new();
                clap_complete::generate(shell, &mut command, "skillsync", &mut script);
                output::write_data(format_args!("{}", String::from_utf8_lossy(&script)));
                Ok(output::exit::ok())
            }
            args::Command::Man => {
                let command = <args::Cli as clap::CommandFactory>::command();
                let mut page = Vec::new();
                clap_mangen::Man::new(command).render(&mut page)?;
                output::write_data(format_args!("{}", String::from_utf8_lossy(&page)));
                Ok(output::exit::ok())
            }
            args::Command::History(history_args) => cmd::history::run(&history_args).await,
            args::Command::Demo(demo_args) => cmd::demo::run(&demo_args).await,
            args::Command::Assign(assign_args) => cmd::assign::run(&assign_args).await,
            args::Command::Retire(retire_args) => cmd::retire::run(&retire_args).await,
            args::Command::Drift(common) => cmd::drift::run(&common).await,
            args::Command::Export(export_args) => cmd::export::run(&export_args).await,
            args::Command::Verify(verify_args) => cmd::verify::run(&verify_args).await,
            args::Command::Why(why_args) => cmd::why::run(&why_args).await,
            args::Command::Bench(bench_args) => cmd::bench::run(&bench_args).await,
            args::Command::Serve(serve_args) => serve::run(&serve_args).await,
        }
    });
    report_resources();
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// With `SKILLSYNC_RESOURCE_REPORT=FILE`, writes the process's own peak resident memory and
/// CPU time to FILE as JSON when the command ends, for `skillsync bench`, which runs commands
/// as child processes. The kernel's account of a child (`getrusage(RUSAGE_CHILDREN)`) cannot
/// serve: a child started by `posix_spawn` shares its parent's memory until it execs, and
/// Linux keeps that peak as the child's, so only the child knows its own (`VmHWM`).
fn report_resources() {
    let Some(path) = std::env::var_os("SKILLSYNC_RESOURCE_REPORT") else {
        return;
    };
    let peak_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        });
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage only writes the struct it is given.
    let cpu_seconds = (unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } == 0)
        .then(|| {
            // SAFETY: initialized by the successful call above.
            let usage = unsafe { usage.assume_init() };
            let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            seconds(usage.ru_utime) + seconds(usage.ru_stime)
        });
    let report = serde_json::json!({
        "peakRssMib": peak_kib.map(|kib| kib as f64 / 1024.0),
        "cpuSeconds": cpu_seconds,
    });
    if let Err(error) = std::fs::write(&path, report.to_string()) {
        eprintln!(
            "warning: cannot write the resource report to {}: {error}",
            std::path::Path::new(&path).display()
        );
    }
}

/// What clap could not parse, or `--help`/`--version`. clap exits 2 on a usage error, which
/// scripts read as "changes pending" (SPEC section 3): here a usage error is an error, exit 1,
/// with clap's message on stderr; help and version go to stdout with exit 0.
fn usage(error: &clap::Error) -> ExitCode {
    // A closed stdout (`skillsync --help | head -1`) is not worth reporting.
    let _ = error.print();
    if error.use_stderr() {
        output::exit::error()
    } else {
        output::exit::ok()
    }
}

/// Diagnostics go to stderr; `-v` shows request traces, `RUST_LOG` overrides. The service
/// (`log_format` given) logs what it does at info by default, as text or JSON lines.
fn init_tracing(verbose: u8, log_format: Option<args::LogFormat>) {
    let default = match (verbose, log_format) {
        (0, None) => "warn",
        (0, Some(_)) | (1, _) => "info",
        (2, _) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(std::io::stderr);
    if log_format == Some(args::LogFormat::Json) {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init();
    } else {
        builder.init();
    }
}
