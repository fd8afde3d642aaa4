//! The main status page's markup: one section per question an operator asks (what is it
//! doing, did the runs go through, did the events, what is still settling, how much of the
//! API budget went, where does the tenant drift), headings and tables with headers for screen
//! readers, and a small inline style that reads at phone width. No script, no external font.

use jiff::Timestamp;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use skillsync_store::{EventRecord, EventState, RunOutcome, RunSummary};

use super::format::{count, duration, percent};
use super::gather::{Overview, State};

/// The whole style: system fonts, one column, tables that scroll sideways on a phone rather
/// than squeeze; colours with a contrast of at least 4.5:1 on their background.
const STYLE: &str = r#"
:root{--fg:#1d2330;--muted:#535c6b;--line:#d9dee7;--bg:#f4f6f9;--card:#fff;--ok:#1d6e39;--warn:#7f5300;--bad:#a8231b;--info:#1c46c4}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:var(--fg);background:var(--bg)}
header,main,footer{max-width:76rem;margin:0 auto;padding:0 1rem}
header{padding-top:.75rem}
h1{font-size:1.45rem;margin:.4rem 0}
h2{font-size:1.15rem;margin:0 0 .6rem}
h3{font-size:1rem;margin:1.1rem 0 .4rem}
a{color:#1a4fb5}
nav ul{list-style:none;padding:0;margin:.4rem 0;display:flex;flex-wrap:wrap;gap:.2rem 1.1rem}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem;margin:1rem 0}
.state{font-size:1.1rem;margin:0;padding:.6rem .8rem;border-radius:6px;border-left:6px solid var(--ok);background:#eaf6ee}
.state-syncing{border-color:var(--info);background:#ebf0fd}
.state-paused{border-color:var(--warn);background:#fcf4e2}
.state-guard,.state-lease{border-color:var(--bad);background:#fcecea}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1.2rem;margin:.8rem 0 0}
dl.facts dt{color:var(--muted)}
dd{margin:0}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.92rem}
caption{text-align:left;color:var(--muted);padding:.2rem 0 .4rem}
th,td{padding:.35rem .55rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{background:#eef1f5;white-space:nowrap}
tbody th{font-weight:600}
tbody th code{white-space:nowrap}
.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;padding:0 .5rem;border-radius:999px;font-size:.85rem;font-weight:600;white-space:nowrap}
.ok{color:var(--ok);background:#e1f2e6}.bad{color:var(--bad);background:#fbe3e0}.warn{color:var(--warn);background:#faefd5}.info{color:var(--info);background:#e3eafc}
.muted{color:var(--muted)}
.reason{max-width:36rem}
code{font:.9em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
ul.changes{margin:.2rem 0 .6rem;padding-left:1.2rem}
nav.pages{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;margin:.8rem 0}
footer{padding-bottom:1.5rem}
@media (max-width:40rem){body{font-size:14px}dl.facts{grid-template-columns:1fr}dl.facts dt{font-weight:600;color:var(--fg)}dl.facts dd{margin-bottom:.3rem}section{padding:.75rem;margin:.6rem 0}caption{max-width:calc(100vw - 3.6rem);position:sticky;left:0}.scroll table{min-width:38rem}.scroll table.wide{min-width:56rem}}
"#;

/// The page around `body`; `refresh` reloads it every 15 s (no script needed).
pub fn layout(title: &str, refresh: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if refresh {
                    meta http-equiv="refresh" content="15";
                }
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
}

/// A `<time>` in the tenant's zone.
pub fn at(o: &super::format::Clocks, t: Timestamp) -> Markup {
    html! { time datetime=(t.to_string()) { (o.tenant(t)) } }
}

/// A `<time>` in the tenant's zone, then the server's.
fn at_both(o: &Overview, t: Timestamp) -> Markup {
    html! {
        time datetime=(t.to_string()) { (o.clocks.tenant(t)) }
        span.muted { " · server " (o.clocks.local(t)) }
    }
}

/// A table cell's time: short, with the full instant for machines.
pub fn short(clocks: &super::format::Clocks, t: Timestamp, now: Timestamp) -> Markup {
    html! { time datetime=(t.to_string()) title=(clocks.tenant(t)) { (clocks.short(t, now)) } }
}

pub fn outcome_badge(run: &RunSummary) -> Markup {
    let (class, text) = match (run.ended_at, run.outcome) {
        (None, _) => ("badge info", "no end yet"),
        (_, RunOutcome::Succeeded) => ("badge ok", "succeeded"),
        (_, RunOutcome::Failed) => ("badge bad", "failed"),
        (_, RunOutcome::Refused) => ("badge warn", "refused"),
        (_, RunOutcome::Interrupted) => ("badge warn", "interrupted"),
    };
    html! { span class=(class) { (text) } }
}

fn event_badge(state: EventState) -> Markup {
    let class = match state {
        EventState::Queued => "badge info",
        EventState::Applied => "badge ok",
        EventState::Rejected => "badge bad",
        EventState::Superseded => "badge warn",
    };
    html! { span class=(class) { (state.as_str()) } }
}

/// A note in place of what could not be read.
fn unreadable(what: &str, why: &str) -> Markup {
    html! { p.bad role="alert" { "Cannot read " (what) ": " (why) } }
}

pub fn page(o: &Overview) -> Markup {
    layout(
        "skillsync status",
        true,
        html! {
            header {
                h1 { "skillsync status" }
                p.muted {
                    "Tenant " code { (o.tenant) } " · as of " (at_both(o, o.now))
                    " · times in " (o.clocks.tenant_name) " (the tenant's zone) · refreshes every 15 s"
                }
                nav aria-label="Sections" {
                    ul {
                        li { a href="#state" { "State" } }
                        li { a href="#runs" { "Runs" } }
                        li { a href="#queue" { "Event queue" } }
                        li { a href="#settling" { "Settling" } }
                        li { a href="#budget" { "API budget" } }
                        li { a href="#drift" { "Drift" } }
                    }
                }
            }
            main {
                (state_section(o))
                (runs_section(o))
                (queue_section(o))
                (settling_section(o))
                (budget_section(o))
                (drift_section(o))
            }
            footer.muted {
                p {
                    "Read from the journal, the event queue and this process's memory: opening this page makes no call to the tenant. "
                    "Runs in detail: " code { "skillsync history" } "; an event's fate: " code { "GET /v1/events/{id}" } "."
                }
            }
        },
    )
}

fn state_section(o: &Overview) -> Markup {
    let (class, label, detail): (&str, &str, Markup) = match &o.state {
        State::Syncing { since } => (
            "syncing",
            "Syncing",
            html! { "the nightly full sync started at " (at(&o.clocks, *since)) " (" (duration(o.now.duration_since(*since))) " ago)." },
        ),
        State::LeaseElsewhere { holder, at: when } => (
            "lease",
            "Lease held elsewhere",
            html! { "at " (at(&o.clocks, *when)) " the tenant's lease was held by " (holder) "; this process writes nothing while another holds it." },
        ),
        State::Guard { why, at: when } => (
            "guard",
            "Stopped by a guard",
            html! { "the full sync at " (at(&o.clocks, *when)) " wrote nothing: " (why) },
        ),
        State::Paused => (
            "paused",
            "Paused by the window",
            html! { "the sync window is closed; the full sync waits for it (HRIS events are still applied)." },
        ),
        State::Idle { note } => (
            "idle",
            "Idle",
            html! {
                "waiting for HRIS events and the next full sync."
                @if let Some(note) = note { " Note: " (note) "." }
            },
        ),
    };
    html! {
        section id="state" aria-labelledby="state-h" {
            h2 id="state-h" { "State" }
            p class=(format!("state state-{class}")) role="status" {
                strong { (label) } " — " (detail)
            }
            dl.facts {
                dt { "Sync window" }
                dd {
                    @match &o.window {
                        None => { "none: writes may happen at any time (" code { "[sync] window" } " is not set)" }
                        Some(w) => {
                            (w.window) " (" (o.clocks.tenant_name) ") — "
                            @match w.closes {
                                Some(closes) => { "open until " (at(&o.clocks, closes)) }
                                None => { "closed" }
                            }
                        }
                    }
                }
                @if let Some(next) = o.window.as_ref().and_then(|w| w.next_opening) {
                    dt { "Next window opening" }
                    dd { (at_both(o, next)) }
                }
                dt { "Next full sync" }
                dd {
                    @match o.next_full_sync {
                        Some(next) => { (at_both(o, next)) }
                        None => { "not scheduled" }
                    }
                }
                dt { "Last full sync completed" }
                dd {
                    @match o.last_full_sync {
                        Some(last) => { (at_both(o, last)) }
                        None => { "none since this process started" }
                    }
                }
                dt { "Tenant's lease" }
                dd {
                    @if o.lease_held { "held by this process at its last attempt" }
                    @else { "not held by this process (not needed yet, or held by another)" }
                }
            }
        }
    }
}

fn runs_section(o: &Overview) -> Markup {
    html! {
        section id="runs" aria-labelledby="runs-h" {
            h2 id="runs-h" { "Last runs" }
            @match &o.runs {
                Err(why) => { (unreadable("the journal's runs", why)) }
                Ok(runs) if runs.is_empty() => { p { "The journal has no run yet." } }
                Ok(runs) => {
                    div.scroll role="region" aria-labelledby="runs-h" tabindex="0" {
                        table.wide {
                            caption {
                                "The last " (runs.len()) " runs in the journal, newest first. "
                                "429 answers are not journaled per run: see the API budget."
                            }
                            thead {
                                tr {
                                    th scope="col" { "Run" }
                                    th scope="col" { "Command" }
                                    th scope="col" { "Started" }
                                    th.n scope="col" { "Duration" }
                                    th scope="col" { "Outcome" }
                                    th.n scope="col" { "Users changed" }
                                    th.n scope="col" { "Users failed" }
                                    th.n scope="col" { "API calls" }
                                    th scope="col" { "Settles at" }
                                }
                            }
                            tbody {
                                @for run in runs { (run_row(o, run)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn run_row(o: &Overview, run: &RunSummary) -> Markup {
    let counts = run.counts.as_ref();
    let figure = |f: fn(&skillsync_store::RunCounts) -> u64| {
        counts.map_or_else(|| "—".to_string(), |c| count(f(c)))
    };
    html! {
        tr id=(format!("run-{}", run.id)) {
            th scope="row" { a href=(format!("/runs/{}", run.id)) { "#" (run.id) } }
            td { (run.command) }
            td { (short(&o.clocks, run.started_at, o.now)) }
            td.n {
                @match run.ended_at {
                    Some(end) => { (duration(end.duration_since(run.started_at))) }
                    None => { "—" }
                }
            }
            td {
                (outcome_badge(run))
                @if let Some(stopped) = counts.and_then(|c| c.stopped.as_ref()) {
                    br; span.muted { (stopped) }
                }
            }
            td.n { (figure(|c| c.users_updated)) }
            td.n { (figure(|c| c.users_failed)) }
            td.n { (figure(|c| c.requests)) }
            td {
                @match run.settles_at {
                    Some(t) => {
                        (short(&o.clocks, t, o.now))
                        @if t > o.now { " " span.badge.info { "in " (duration(t.duration_since(o.now))) } }
                    }
                    None => { "—" }
                }
            }
        }
    }
}

fn queue_section(o: &Overview) -> Markup {
    html! {
        section id="queue" aria-labelledby="queue-h" {
            h2 id="queue-h" { "Event queue" }
            @match &o.queue {
                Err(why) => { (unreadable("the event queue", why)) }
                Ok(stats) => {
                    dl.facts {
                        dt { "Waiting (depth)" }
                        dd { (count(stats.queued)) }
                        dt { "Oldest waiting" }
                        dd {
                            @match stats.oldest_queued {
                                Some(t) => { "received " (duration(o.now.duration_since(t))) " ago (" (at(&o.clocks, t)) ")" }
                                None => { "none" }
                            }
                        }
                        dt { "Applied" }
                        dd { (count(stats.applied)) }
                        dt { "Rejected" }
                        dd { (count(stats.rejected)) }
                        dt { "Superseded" }
                        dd { (count(stats.superseded)) }
                    }
                }
            }
            h3 id="events-h" { "Last events" }
            @match &o.recent {
                Err(why) => { (unreadable("the last events", why)) }
                Ok(events) if events.is_empty() => { p { "No event received yet." } }
                Ok(events) => { (events_table(o, events, "events-h")) }
            }
            h3 id="rejected-h" { "Rejected events" }
            @match &o.rejected {
                Err(why) => { (unreadable("the rejected events", why)) }
                Ok(events) if events.is_empty() => { p { "No event rejected." } }
                Ok(events) => {
                    div.scroll role="region" aria-labelledby="rejected-h" tabindex="0" {
                        table {
                            caption { "The last " (events.len()) " events rejected, newest first, with the reason the HRIS reads from " code { "GET /v1/events/{id}" } "." }
                            thead {
                                tr {
                                    th scope="col" { "Event" }
                                    th scope="col" { "Received" }
                                    th scope="col" { "Agent" }
                                    th scope="col" { "Reason" }
                                }
                            }
                            tbody {
                                @for event in events {
                                    tr {
                                        th scope="row" { code { (event.id) } }
                                        td { (short(&o.clocks, event.received_at, o.now)) }
                                        td { (event.employee_id) }
                                        td.reason { (event.reason.as_deref().unwrap_or("—")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn events_table(o: &Overview, events: &[EventRecord], labelled_by: &str) -> Markup {
    html! {
        div.scroll role="region" aria-labelledby=(labelled_by) tabindex="0" {
            table.wide {
                caption { "The " (events.len()) " events received last, newest first." }
                thead {
                    tr {
                        th scope="col" { "Event" }
                        th scope="col" { "Received" }
                        th scope="col" { "Type" }
                        th scope="col" { "Agent" }
                        th scope="col" { "Lane" }
                        th scope="col" { "Outcome" }
                        th scope="col" { "Run" }
                        th scope="col" { "Reason" }
                    }
                }
                tbody {
                    @for event in events {
                        tr {
                            th scope="row" { code { (event.id) } }
                            td { (short(&o.clocks, event.received_at, o.now)) }
                            td {
                                (crate::serve::desired::stored_event(&event.body)
                                    .map_or("—", |e| e.type_name()))
                            }
                            td { (event.employee_id) }
                            td { (event.lane.as_str()) }
                            td { (event_badge(event.state)) }
                            td {
                                @match event.run {
                                    Some(run) => { a href=(format!("/runs/{run}")) { "#" (run) } }
                                    None => { "—" }
                                }
                            }
                            td.reason { (event.reason.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

fn settling_section(o: &Overview) -> Markup {
    html! {
        section id="settling" aria-labelledby="settling-h" {
            h2 id="settling-h" { "Settling" }
            p.muted { "Writes the tenant accepted that the routing cache may not route on yet (write time + " code { "[sync] propagation_window" } ")." }
            @match &o.settling {
                Err(why) => { (unreadable("the journal's writes", why)) }
                Ok((writes, _)) if writes.is_empty() => { p { "Nothing is settling: routing sees every write in the journal." } }
                Ok((writes, total)) => {
                    div.scroll role="region" aria-labelledby="settling-h" tabindex="0" {
                        table {
                            caption {
                                (count(*total as u64)) " writes not yet settled, soonest first"
                                @if *total > writes.len() { " (the first " (writes.len()) " shown)" }
                                "."
                            }
                            thead {
                                tr {
                                    th scope="col" { "User or definition" }
                                    th scope="col" { "What" }
                                    th scope="col" { "Run" }
                                    th scope="col" { "Settles at" }
                                    th.n scope="col" { "Time left" }
                                }
                            }
                            tbody {
                                @for write in writes {
                                    tr {
                                        th scope="row" { code { (write.subject) } }
                                        td { (write.target.as_str().replace('_', " ")) }
                                        td { a href=(format!("/runs/{}", write.run)) { "#" (write.run) } }
                                        td { (short(&o.clocks, write.settles_at, o.now)) }
                                        td.n { (duration(write.settles_at.duration_since(o.now))) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn budget_section(o: &Overview) -> Markup {
    html! {
        section id="budget" aria-labelledby="budget-h" {
            h2 id="budget-h" { "API budget" }
            p.muted {
                "Counted by this process's tenant client (every request: retries and token requests included), "
                "sampled every 10 s since it started at " (at(&o.clocks, o.started)) "; "
                "other processes sharing the journal count their own. Configured rate: "
                strong { (o.rate) " requests/s" } " (" code { "[limits] requests_per_second" } ")."
            }
            div.scroll role="region" aria-labelledby="budget-h" tabindex="0" {
                table {
                    caption { "API calls against what the configured rate allows over the same time." }
                    thead {
                        tr {
                            th scope="col" { "Period" }
                            th scope="col" { "Since" }
                            th.n scope="col" { "API calls" }
                            th.n scope="col" { "Allowed" }
                            th.n scope="col" { "Used" }
                            th.n scope="col" { "429s" }
                            th.n scope="col" { "Token fetches" }
                        }
                    }
                    tbody {
                        @for row in &o.budget {
                            tr {
                                th scope="row" { (row.label) }
                                td { (short(&o.clocks, row.used.at.max(o.started), o.now)) }
                                td.n { (count(row.used.requests)) }
                                td.n { (count(row.allowed)) }
                                td.n { (percent(row.used.requests, row.allowed)) }
                                td.n {
                                    @if row.used.throttled > 0 { span.badge.bad { (count(row.used.throttled)) } }
                                    @else { "0" }
                                }
                                td.n { (count(row.used.token_fetches)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn drift_section(o: &Overview) -> Markup {
    html! {
        section id="drift" aria-labelledby="drift-h" {
            h2 id="drift-h" { "Drift" }
            @match &o.drift {
                None => { p { "No full sync has read the tenant since this process started." } }
                Some(drift) if drift.agents == 0 => { p { "The last full read found the tenant as the HRIS says for every agent." } }
                Some(drift) => {
                    p {
                        "The last full read found " strong { (count(drift.agents as u64)) " agents" }
                        @if let Some(n) = drift.assignments { " (" (count(n)) " assignments)" }
                        " different from the HRIS; the full sync then wrote what it could (its run above). "
                        code { "skillsync drift" } " reads the tenant now and says the same per agent."
                    }
                    div.scroll role="region" aria-labelledby="drift-h" tabindex="0" {
                        table {
                            caption {
                                @if drift.agents > drift.first.len() { "The first " (drift.first.len()) " of them." }
                                @else { "Each of them." }
                            }
                            thead {
                                tr {
                                    th scope="col" { "Agent" }
                                    th scope="col" { "User" }
                                    th scope="col" { "Locale" }
                                    th.n scope="col" { "Differences" }
                                }
                            }
                            tbody {
                                @for agent in &drift.first {
                                    tr {
                                        th scope="row" { a href=(format!("#drift-{}", agent.employee_id)) { (agent.employee_id) } }
                                        td { code { (agent.user_id) } }
                                        td { (agent.locale) }
                                        td.n { (agent.changes.len()) }
                                    }
                                }
                            }
                        }
                    }
                    h3 { "What differs" }
                    @for agent in &drift.first {
                        p id=(format!("drift-{}", agent.employee_id)) {
                            strong { (agent.employee_id) } " · user " code { (agent.user_id) } " · " (agent.locale)
                        }
                        ul.changes {
                            @for change in &agent.changes { li { (change) } }
                        }
                    }
                }
            }
        }
    }
}
