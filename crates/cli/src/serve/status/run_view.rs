//! A run's page: what the journal says of it (when, how it ended, its counts) and its writes,
//! 100 a page: the user, what changed before → after, what became of the write, when routing
//! settles on it. Paging is links and a plain GET form, so it works without a script.

use maud::{Markup, html};
use skillsync_store::{RunCounts, WriteStatus};

use super::format::{count, duration, write_change};
use super::gather::RunPage;
use super::view::{at, layout, outcome_badge, short};

fn status_badge(status: WriteStatus) -> Markup {
    let class = match status {
        WriteStatus::Applied => "badge ok",
        WriteStatus::Conflict => "badge warn",
        WriteStatus::Failed => "badge bad",
        WriteStatus::Unknown => "badge warn",
    };
    html! { span class=(class) { (status.as_str()) } }
}

pub fn page(p: &RunPage) -> Markup {
    let run = &p.run;
    let title = format!("Run {} · skillsync", run.id);
    layout(
        &title,
        false,
        html! {
            header {
                p { a href="/" { "← Status" } }
                h1 { "Run " (run.id) ": " (run.command) }
            }
            main {
                section aria-labelledby="summary-h" {
                    h2 id="summary-h" { "Summary" }
                    dl.facts {
                        dt { "Outcome" }
                        dd { (outcome_badge(run)) }
                        dt { "Started" }
                        dd { (at(&p.clocks, run.started_at)) }
                        dt { "Ended" }
                        dd {
                            @match run.ended_at {
                                Some(end) => { (at(&p.clocks, end)) " (" (duration(end.duration_since(run.started_at))) ")" }
                                None => { "no end: still running, or its process was killed" }
                            }
                        }
                        dt { "Settles at" }
                        dd {
                            @match run.settles_at {
                                Some(t) => {
                                    (at(&p.clocks, t))
                                    @if t > p.now { " (in " (duration(t.duration_since(p.now))) ")" }
                                    @else { " (settled)" }
                                }
                                None => { "—" }
                            }
                        }
                        dt { "Dialect" }
                        dd { (run.dialect) }
                        @if let Some(counts) = &run.counts { (counts_facts(counts)) }
                    }
                }
                section aria-labelledby="writes-h" {
                    h2 id="writes-h" { "Writes" }
                    @if p.total_writes == 0 {
                        p { "This run journaled no write." }
                    } @else if p.writes.is_empty() {
                        p { "Page " (p.page) " is past the last one (" (p.pages) ")." }
                        (pager(p))
                    } @else {
                        (writes_table(p))
                        (pager(p))
                    }
                }
            }
        },
    )
}

fn counts_facts(c: &RunCounts) -> Markup {
    html! {
        dt { "Users" }
        dd {
            (count(c.users_planned)) " planned · " (count(c.users_updated)) " changed · "
            (count(c.users_already_current)) " already current · " (count(c.users_failed)) " failed · "
            (count(c.users_not_kept)) " not kept · " (count(c.users_not_attempted)) " not attempted"
        }
        dt { "Definitions" }
        dd {
            (count(c.definitions_created)) " created · " (count(c.definitions_reactivated)) " reactivated · "
            (count(c.definitions_updated)) " updated"
        }
        dt { "API calls" }
        dd { (count(c.requests)) " (" (count(c.conflicts)) " conflicts re-merged)" }
        @if let Some(stopped) = &c.stopped {
            dt { "Stopped" }
            dd { (stopped) }
        }
    }
}

fn writes_table(p: &RunPage) -> Markup {
    let first = p.writes.first().map_or(0, |w| w.0);
    let last = p.writes.last().map_or(0, |w| w.0);
    html! {
        div.scroll role="region" aria-labelledby="writes-h" tabindex="0" {
            table.wide {
                caption {
                    "Writes " (count(first as u64)) "–" (count(last as u64)) " of " (count(p.total_writes as u64))
                    ", in the order journaled; definitions named by their HRIS code and locale."
                }
                thead {
                    tr {
                        th.n scope="col" { "#" }
                        th scope="col" { "User or definition" }
                        th scope="col" { "What" }
                        th scope="col" { "Before → after" }
                        th scope="col" { "Status" }
                        th scope="col" { "At" }
                        th scope="col" { "Settles at" }
                    }
                }
                tbody {
                    @for (n, write) in &p.writes {
                        tr {
                            td.n { (n) }
                            th scope="row" { code { (write.subject) } }
                            td { (write.target.as_str().replace('_', " ")) }
                            td {
                                ul.changes {
                                    @for line in write_change(write.target, &write.before, &write.after, &p.names) {
                                        li { (line) }
                                    }
                                }
                            }
                            td {
                                (status_badge(write.status))
                                @if let Some(detail) = &write.detail {
                                    br; span.muted { (detail) }
                                }
                            }
                            td { (short(&p.clocks, write.at, p.now)) }
                            td {
                                @match write.settles_at {
                                    Some(t) => { (short(&p.clocks, t, p.now)) }
                                    None => { "—" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Previous and next links, and a form to jump to a page (a GET, no script).
fn pager(p: &RunPage) -> Markup {
    let link = |page: usize| format!("/runs/{}?page={page}", p.run.id);
    html! {
        nav.pages aria-label="Pages of writes" {
            @if p.page > 1 {
                a href=(link(p.page - 1)) rel="prev" { "← Previous" }
            }
            span { "Page " (p.page) " of " (p.pages) }
            @if p.page < p.pages {
                a href=(link(p.page + 1)) rel="next" { "Next →" }
            }
            @if p.pages > 1 {
                form method="get" action=(format!("/runs/{}", p.run.id)) {
                    label for="page" { "Go to page " }
                    input id="page" name="page" type="number" min="1" max=(p.pages) value=(p.page) inputmode="numeric";
                    " "
                    button type="submit" { "Go" }
                }
            }
        }
    }
}

pub fn not_found(id: i64) -> Markup {
    layout(
        "No such run · skillsync",
        false,
        html! {
            main {
                p { a href="/" { "← Status" } }
                h1 { "No run " (id) }
                p { "The journal has no run " (id) "; " code { "skillsync history" } " lists them." }
            }
        },
    )
}

pub fn unavailable(id: i64, why: &str) -> Markup {
    layout(
        "Journal unavailable · skillsync",
        false,
        html! {
            main {
                p { a href="/" { "← Status" } }
                h1 { "Run " (id) " cannot be read" }
                p role="alert" { "The journal: " (why) }
            }
        },
    )
}
