//! The sync window: the stretch of the tenant's day during which `apply` may write
//! (`[sync] window = "02:00-04:00"`, read in `[tenant] timezone`).
//!
//! A window is two wall-clock times. Each local day it opens at the first on that day and
//! closes at the second, on the same day or, when the second is not later (`"22:00-02:00"`), on
//! the next. The current time is always a parameter: this module reads no clock.
//!
//! # Daylight-saving changes
//!
//! A wall-clock time that a daylight-saving change skips (spring forward) or repeats (fall
//! back) is turned into an instant with jiff's *compatible* disambiguation, the rule of RFC 5545
//! and of most calendars:
//!
//! - in a gap, the time moves forward by the length of the gap: on Europe/Berlin's 2026-03-29,
//!   02:00 (which never happens) becomes 03:00 CEST, so `"02:00-04:00"` is open one hour that
//!   night. A window lying wholly inside the gap (`"02:00-03:00"` there) does not open that night.
//! - in a fold, the earlier of the two passes counts: on 2026-10-25, `"02:00-04:00"` opens at
//!   02:00 CEST and closes at 04:00 CET, three hours later; a window lying wholly inside the
//!   repeated hour is open during its first pass only.

use std::fmt;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

/// How far ahead [`Window::next_opening`] looks. A real time zone skips a window on one night
/// at most; a week leaves room for odd zones without looping forever.
const DAYS_AHEAD: usize = 7;

/// A daily window of wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    opens: Time,
    closes: Time,
}

/// Why a window's text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// Not two times joined by a dash.
    #[error("`{0}` is not a window such as \"02:00-04:00\"")]
    Shape(String),
    /// One side is not a time of day.
    #[error("`{0}` is not a time of day between 00:00 and 23:59")]
    Time(String),
    /// Opening and closing at the same time could mean never or always.
    #[error("`{0}` opens and closes at the same time")]
    Empty(String),
}

impl WindowError {
    /// What to write instead.
    pub fn hint(&self) -> &'static str {
        match self {
            WindowError::Shape(_) | WindowError::Time(_) => {
                "write HH:MM-HH:MM in the tenant's timezone, e.g. \"02:00-04:00\" or \"22:00-02:00\""
            }
            WindowError::Empty(_) => "to allow writes at any time, remove `window`",
        }
    }
}

/// One opening of a window: from `opens` (included) to `closes` (excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    /// When writes may start, in the window's time zone.
    pub opens: ZonedDateTime,
    /// When they must have stopped.
    pub closes: ZonedDateTime,
}

impl Opening {
    /// Whether `now` falls inside this opening.
    pub fn contains(&self, now: Timestamp) -> bool {
        self.opens.timestamp() <= now && now < self.closes.timestamp()
    }
}

impl Window {
    /// Parses `"HH:MM-HH:MM"` (spaces around the dash and an en dash are accepted).
    pub fn parse(text: &str) -> Result<Window, WindowError> {
        let (opens, closes) = text
            .split_once('-')
            .or_else(|| text.split_once('–'))
            .ok_or_else(|| WindowError::Shape(text.to_string()))?;
        let window = Window {
            opens: parse_time(opens)?,
            closes: parse_time(closes)?,
        };
        if window.opens == window.closes {
            return Err(WindowError::Empty(text.to_string()));
        }
        Ok(window)
    }

    /// The wall-clock time it opens at.
    pub fn opens(&self) -> Time {
        self.opens
    }

    /// The wall-clock time it closes at.
    pub fn closes(&self) -> Time {
        self.closes
    }

    /// Whether it closes on the day after it opens (`"22:00-02:00"`).
    pub fn crosses_midnight(&self) -> bool {
        self.closes < self.opens
    }

    /// The opening that starts on local `date` in `tz`, or `None` when a daylight-saving gap
    /// swallows it that day (see the module documentation).
    pub fn opening_on(&self, date: Date, tz: &TimeZone) -> Option<Opening> {
        let closing_date = if self.crosses_midnight() {
            date.tomorrow().ok()?
        } else {
            date
        };
        let opens = resolve(tz, date.to_datetime(self.opens))?;
        let closes = resolve(tz, closing_date.to_datetime(self.closes))?;
        (opens < closes).then_some(Opening { opens, closes })
    }

    /// The opening `now` falls in, if any.
    pub fn current(&self, now: Timestamp, tz: &TimeZone) -> Option<Opening> {
        let today = tz.to_datetime(now).date();
        // Yesterday's opening may cross midnight into today; tomorrow's is checked for zones
        // whose fall-back fold straddles midnight.
        [today.yesterday().ok(), Some(today), today.tomorrow().ok()]
            .into_iter()
            .flatten()
            .filter_map(|date| self.opening_on(date, tz))
            .find(|opening| opening.contains(now))
    }

    /// Whether writes are allowed at `now`.
    pub fn contains(&self, now: Timestamp, tz: &TimeZone) -> bool {
        self.current(now, tz).is_some()
    }

    /// The first opening that starts strictly after `now` (while a window is open, that is the
    /// next one, not the current one). `None` only near the end of representable time, or in a
    /// zone that skipped the window for a week.
    pub fn next_opening(&self, now: Timestamp, tz: &TimeZone) -> Option<Opening> {
        let today = tz.to_datetime(now).date();
        let mut date = today.yesterday().unwrap_or(today);
        let mut earliest: Option<Opening> = None;
        for _ in 0..DAYS_AHEAD + 2 {
            if let Some(opening) = self.opening_on(date, tz)
                && opening.opens.timestamp() > now
                && earliest
                    .as_ref()
                    .is_none_or(|best| opening.opens < best.opens)
            {
                earliest = Some(opening);
            }
            // A later day's opening beats the best one only when a daylight-saving shift pulls
            // it back, and no shift spans a day: once the day after the best one's is seen, stop.
            if earliest
                .as_ref()
                .is_some_and(|best| best.opens.date() < date)
            {
                break;
            }
            match date.tomorrow() {
                Ok(next_day) => date = next_day,
                Err(_) => break,
            }
        }
        earliest
    }

    /// Why writing at `now` is not allowed, naming the next opening in the tenant's time
    /// (`zone_name`, for the message) and in `local` (the reader's); `None` inside the window.
    pub fn outside(
        &self,
        now: Timestamp,
        tz: &TimeZone,
        zone_name: &str,
        local: &TimeZone,
    ) -> Option<String> {
        if self.contains(now, tz) {
            return None;
        }
        let minutes = |at: &ZonedDateTime| at.strftime("%Y-%m-%d %H:%M %Z").to_string();
        let next = match self.next_start(now, tz) {
            Some(next) => format!(
                "; the next one opens {} ({} local time)",
                minutes(&next),
                minutes(&next.with_time_zone(local.clone()))
            ),
            None => String::new(),
        };
        Some(format!(
            "outside the sync window {self} ({zone_name}){next}"
        ))
    }

    /// When the next opening starts (see [`Window::next_opening`]).
    pub fn next_start(&self, now: Timestamp, tz: &TimeZone) -> Option<ZonedDateTime> {
        self.next_opening(now, tz).map(|opening| opening.opens)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}–{:02}:{:02}",
            self.opens.hour(),
            self.opens.minute(),
            self.closes.hour(),
            self.closes.minute()
        )
    }
}

/// A wall-clock time in `tz`, with compatible disambiguation (the module documentation says
/// why); `None` only beyond the range of representable instants.
/// When a daily job at wall-clock `at` in `tz` next runs after `now`: the first such instant
/// strictly after `now` that lies inside `window` when one is given (a day whose `at` a
/// daylight-saving change moves out of the window is skipped, as the window itself skips
/// such nights). `None` when no day of the coming week qualifies.
pub fn next_daily(
    at: Time,
    now: Timestamp,
    tz: &TimeZone,
    window: Option<&Window>,
) -> Option<Timestamp> {
    let today = tz.to_datetime(now).date();
    let mut date = today.yesterday().unwrap_or(today);
    for _ in 0..DAYS_AHEAD + 2 {
        if let Some(candidate) = resolve(tz, date.to_datetime(at)).map(|z| z.timestamp())
            && candidate > now
            && window.is_none_or(|w| w.contains(candidate, tz))
        {
            return Some(candidate);
        }
        date = date.tomorrow().ok()?;
    }
    None
}

/// Parses a wall-clock time of day, `"HH:MM"`.
pub fn parse_time_of_day(text: &str) -> Result<Time, WindowError> {
    parse_time(text)
}

fn resolve(tz: &TimeZone, datetime: DateTime) -> Option<ZonedDateTime> {
    tz.to_ambiguous_zoned_datetime(datetime).compatible().ok()
}

fn parse_time(text: &str) -> Result<Time, WindowError> {
    let text = text.trim();
    let invalid = || WindowError::Time(text.to_string());
    let (hour, minute) = text.split_once(':').ok_or_else(invalid)?;
    let digits = |s: &str, widths: &[usize]| {
        (widths.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<i8>().ok())
            .flatten()
    };
    let hour = digits(hour, &[1, 2]).ok_or_else(invalid)?;
    let minute = digits(minute, &[2]).ok_or_else(invalid)?;
    Time::new(hour, minute, 0, 0).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).expect("bundled tzdb has it")
    }

    fn at(utc: &str) -> Timestamp {
        utc.parse().expect("a valid RFC 3339 timestamp")
    }

    fn window(text: &str) -> Window {
        Window::parse(text).unwrap()
    }

    /// `2026-03-29 03:00 CEST`: how the CLI shows an opening.
    fn shown(zoned: &ZonedDateTime) -> String {
        zoned.strftime("%Y-%m-%d %H:%M %Z").to_string()
    }

    #[test]
    fn parses_and_displays_windows() {
        let w = window("02:00-04:00");
        assert_eq!(w.opens(), Time::constant(2, 0, 0, 0));
        assert_eq!(w.closes(), Time::constant(4, 0, 0, 0));
        assert!(!w.crosses_midnight());
        assert_eq!(w.to_string(), "02:00–04:00");
        assert_eq!(window(" 2:30 – 23:59 ").to_string(), "02:30–23:59");
        assert!(window("22:00-02:00").crosses_midnight());
        assert!(window("22:00-00:00").crosses_midnight());
    }

    #[test]
    fn rejects_what_is_not_a_window() {
        let error = |text: &str| Window::parse(text).unwrap_err();
        assert_eq!(error("02:00"), WindowError::Shape("02:00".into()));
        assert_eq!(error("25:00-04:00"), WindowError::Time("25:00".into()));
        assert_eq!(error("02:60-04:00"), WindowError::Time("02:60".into()));
        assert_eq!(error("02:00-4"), WindowError::Time("4".into()));
        assert_eq!(error("02:0-04:00"), WindowError::Time("02:0".into()));
        assert_eq!(error("+2:00-04:00"), WindowError::Time("+2:00".into()));
        assert_eq!(
            error("03:00-03:00"),
            WindowError::Empty("03:00-03:00".into())
        );
        assert!(error("24:00-02:00").to_string().contains("00:00 and 23:59"));
    }

    #[test]
    fn an_ordinary_day_opens_and_closes_on_the_hour() {
        let berlin = tz("Europe/Berlin");
        let w = window("02:00-04:00");
        // 2026-06-10 in CEST (UTC+2): open 00:00Z–02:00Z.
        assert!(!w.contains(at("2026-06-09T23:59:59Z"), &berlin));
        assert!(w.contains(at("2026-06-10T00:00:00Z"), &berlin));
        assert!(w.contains(at("2026-06-10T01:59:59Z"), &berlin));
        assert!(!w.contains(at("2026-06-10T02:00:00Z"), &berlin));
        let next = w.next_start(at("2026-06-10T02:00:00Z"), &berlin).unwrap();
        assert_eq!(shown(&next), "2026-06-11 02:00 CEST");
    }

    #[test]
    fn spring_forward_in_berlin_opens_the_window_when_the_clocks_jump() {
        // 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00Z); 02:00 local never happens.
        let berlin = tz("Europe/Berlin");
        let w = window("02:00-04:00");
        let before = at("2026-03-29T00:30:00Z"); // 01:30 CET
        assert!(!w.contains(before, &berlin));
        let opening = w.next_opening(before, &berlin).unwrap();
        assert_eq!(shown(&opening.opens), "2026-03-29 03:00 CEST");
        assert_eq!(opening.opens.timestamp(), at("2026-03-29T01:00:00Z"));
        assert_eq!(shown(&opening.closes), "2026-03-29 04:00 CEST");
        // So the window is one hour long that night.
        assert!(w.contains(at("2026-03-29T01:00:00Z"), &berlin));
        assert!(w.contains(at("2026-03-29T01:59:00Z"), &berlin));
        assert!(!w.contains(at("2026-03-29T02:00:00Z"), &berlin));
        // The day after, it opens at 02:00 CEST again.
        let after = w.next_start(at("2026-03-29T02:00:00Z"), &berlin).unwrap();
        assert_eq!(shown(&after), "2026-03-30 02:00 CEST");
        assert_eq!(after.timestamp(), at("2026-03-30T00:00:00Z"));
    }

    #[test]
    fn a_window_inside_the_skipped_hour_does_not_open_that_night() {
        let berlin = tz("Europe/Berlin");
        let w = window("02:00-03:00");
        assert_eq!(w.opening_on(date(2026, 3, 29), &berlin), None);
        let next = w.next_start(at("2026-03-28T03:00:00Z"), &berlin).unwrap();
        assert_eq!(shown(&next), "2026-03-30 02:00 CEST");
        // Nothing in the night of the change is inside it.
        for minute in 0..=240 {
            let t = at("2026-03-28T23:00:00Z") + jiff::SignedDuration::from_mins(minute);
            assert!(!w.contains(t, &berlin), "{t}");
        }
    }

    #[test]
    fn fall_back_in_berlin_keeps_the_window_open_through_the_repeated_hour() {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00Z); 02:00–02:59 happens twice.
        let berlin = tz("Europe/Berlin");
        let w = window("02:00-04:00");
        let opening = w.opening_on(date(2026, 10, 25), &berlin).unwrap();
        assert_eq!(shown(&opening.opens), "2026-10-25 02:00 CEST");
        assert_eq!(opening.opens.timestamp(), at("2026-10-25T00:00:00Z"));
        assert_eq!(shown(&opening.closes), "2026-10-25 04:00 CET");
        assert_eq!(opening.closes.timestamp(), at("2026-10-25T03:00:00Z"));
        assert!(
            w.contains(at("2026-10-25T01:30:00Z"), &berlin),
            "02:30 CET, second pass"
        );
        assert!(!w.contains(at("2026-10-25T03:00:00Z"), &berlin));
        let next = w.next_start(at("2026-10-25T03:00:00Z"), &berlin).unwrap();
        assert_eq!(shown(&next), "2026-10-26 02:00 CET");
        assert_eq!(next.timestamp(), at("2026-10-26T01:00:00Z"));
    }

    #[test]
    fn new_york_changes_shift_the_window_compatibly() {
        let new_york = tz("America/New_York");
        // 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00Z). 02:30 moves to 03:30 EDT.
        let w = window("01:30-02:30");
        let opening = w.opening_on(date(2026, 3, 8), &new_york).unwrap();
        assert_eq!(shown(&opening.opens), "2026-03-08 01:30 EST");
        assert_eq!(shown(&opening.closes), "2026-03-08 03:30 EDT");
        assert!(
            w.contains(at("2026-03-08T07:15:00Z"), &new_york),
            "03:15 EDT"
        );
        // 2026-11-01: 02:00 EDT becomes 01:00 EST (06:00Z); the earlier 01:xx pass counts.
        let w = window("01:00-01:30");
        let opening = w.opening_on(date(2026, 11, 1), &new_york).unwrap();
        assert_eq!(shown(&opening.opens), "2026-11-01 01:00 EDT");
        assert_eq!(opening.opens.timestamp(), at("2026-11-01T05:00:00Z"));
        assert!(
            w.contains(at("2026-11-01T05:15:00Z"), &new_york),
            "01:15 EDT"
        );
        assert!(
            !w.contains(at("2026-11-01T06:15:00Z"), &new_york),
            "01:15 EST"
        );
        let next = w.next_start(at("2026-11-01T06:15:00Z"), &new_york).unwrap();
        assert_eq!(shown(&next), "2026-11-02 01:00 EST");
    }

    #[test]
    fn a_window_crossing_midnight_belongs_to_the_evening_it_opens() {
        let berlin = tz("Europe/Berlin");
        let w = window("22:00-02:00");
        // 2026-06-10 in CEST.
        assert!(w.contains(at("2026-06-10T21:30:00Z"), &berlin), "23:30");
        assert!(w.contains(at("2026-06-10T23:59:00Z"), &berlin), "01:59");
        assert!(!w.contains(at("2026-06-11T00:00:00Z"), &berlin), "02:00");
        let current = w.current(at("2026-06-10T23:00:00Z"), &berlin).unwrap();
        assert_eq!(shown(&current.opens), "2026-06-10 22:00 CEST");
        assert_eq!(shown(&current.closes), "2026-06-11 02:00 CEST");
        let next = w.next_start(at("2026-06-11T00:00:00Z"), &berlin).unwrap();
        assert_eq!(shown(&next), "2026-06-11 22:00 CEST");
        // Inside a window, the next start is tomorrow's.
        let next = w.next_start(at("2026-06-10T21:30:00Z"), &berlin).unwrap();
        assert_eq!(shown(&next), "2026-06-11 22:00 CEST");
    }

    #[test]
    fn a_window_crossing_midnight_into_spring_forward_closes_after_the_jump() {
        // Opens 22:00 CET on the 28th; 02:00 on the 29th is skipped, so it closes at 03:00 CEST:
        // 21:00Z to 01:00Z, four hours as on any other night.
        let berlin = tz("Europe/Berlin");
        let w = window("22:00-02:00");
        let opening = w.opening_on(date(2026, 3, 28), &berlin).unwrap();
        assert_eq!(opening.opens.timestamp(), at("2026-03-28T21:00:00Z"));
        assert_eq!(shown(&opening.closes), "2026-03-29 03:00 CEST");
        assert!(w.contains(at("2026-03-29T00:45:00Z"), &berlin));
        assert!(!w.contains(at("2026-03-29T01:00:00Z"), &berlin));
        let next = w.next_start(at("2026-03-29T01:00:00Z"), &berlin).unwrap();
        assert_eq!(shown(&next), "2026-03-29 22:00 CEST");
    }

    #[test]
    fn a_window_ending_at_midnight_closes_at_the_next_midnight() {
        let utc = TimeZone::UTC;
        let w = window("22:00-00:00");
        assert!(w.contains(at("2026-06-10T23:59:59Z"), &utc));
        assert!(!w.contains(at("2026-06-11T00:00:00Z"), &utc));
    }

    const ZONES: &[&str] = &[
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe", // a half-hour daylight-saving shift
        "Asia/Kolkata",        // a half-hour offset, no daylight saving
        "Pacific/Chatham",     // +12:45 / +13:45
        "America/Santiago",    // southern hemisphere, changes at midnight
    ];

    fn zone() -> impl Strategy<Value = TimeZone> {
        proptest::sample::select(ZONES).prop_map(tz)
    }

    fn any_window() -> impl Strategy<Value = Window> {
        (0..24i8, 0..60i8, 0..24i8, 0..60i8)
            .prop_filter("opens and closes differ", |(h1, m1, h2, m2)| {
                (h1, m1) != (h2, m2)
            })
            .prop_map(|(h1, m1, h2, m2)| Window {
                opens: Time::constant(h1, m1, 0, 0),
                closes: Time::constant(h2, m2, 0, 0),
            })
    }

    /// 2000 to 2060, in seconds.
    fn any_instant() -> impl Strategy<Value = Timestamp> {
        (946_684_800i64..2_871_763_200).prop_map(|s| Timestamp::from_second(s).unwrap())
    }

    /// Whether `tz` keeps one offset for a day either side of `now`: no change to account for.
    fn steady_around(tz: &TimeZone, now: Timestamp) -> bool {
        let day = jiff::SignedDuration::from_hours(26);
        tz.to_offset(now - day) == tz.to_offset(now + day)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        /// Away from a change, the window is the plain wall-clock comparison.
        #[test]
        fn matches_the_wall_clock_on_steady_days(w in any_window(), tz in zone(), now in any_instant()) {
            prop_assume!(steady_around(&tz, now));
            let local = tz.to_datetime(now).time();
            let inside = if w.crosses_midnight() {
                local >= w.opens || local < w.closes
            } else {
                w.opens <= local && local < w.closes
            };
            prop_assert_eq!(w.contains(now, &tz), inside);
            let next = w.next_start(now, &tz).unwrap();
            prop_assert_eq!(next.time(), w.opens);
            prop_assert!(next.timestamp() - now <= jiff::SignedDuration::from_hours(24));
        }

        /// Across any change: the next start lies ahead, the window is open at it, and every
        /// moment before it (from `now` on) agrees on it.
        #[test]
        fn the_next_start_is_an_opening_ahead_and_stable(
            w in any_window(), tz in zone(), now in any_instant(), step in 0.0f64..1.0,
        ) {
            let next = w.next_opening(now, &tz).unwrap();
            prop_assert!(next.opens.timestamp() > now);
            prop_assert!(next.opens < next.closes);
            prop_assert!(w.contains(next.opens.timestamp(), &tz));
            prop_assert!(next.opens.timestamp() - now <= jiff::SignedDuration::from_hours(49));
            let gap = (next.opens.timestamp() - now).as_secs_f64();
            let later = now + jiff::SignedDuration::from_secs_f64(gap * step);
            if later < next.opens.timestamp() {
                prop_assert_eq!(w.next_start(later, &tz), Some(next.opens.clone()));
            }
            if let Some(current) = w.current(now, &tz) {
                prop_assert!(current.contains(now));
                prop_assert!(current.opens < next.opens);
            }
        }
    }
}

#[cfg(test)]
mod next_daily_tests {
    use super::*;

    fn berlin() -> TimeZone {
        jiff::tz::db().get("Europe/Berlin").unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn the_nightly_job_runs_at_its_time_inside_the_window_in_the_tenants_zone() {
        let window = Window::parse("02:00-04:00").unwrap();
        let time = parse_time_of_day("02:30").unwrap();
        // 2026-06-01 12:00 UTC is 14:00 CEST: next is 02:30 CEST tomorrow = 00:30 UTC.
        let next = next_daily(time, at("2026-06-01T12:00:00Z"), &berlin(), Some(&window));
        assert_eq!(next, Some(at("2026-06-02T00:30:00Z")));
        // Just before it: the same night.
        let next = next_daily(time, at("2026-06-02T00:29:59Z"), &berlin(), Some(&window));
        assert_eq!(next, Some(at("2026-06-02T00:30:00Z")));
        // Exactly at it: the next night (strictly after now).
        let next = next_daily(time, at("2026-06-02T00:30:00Z"), &berlin(), Some(&window));
        assert_eq!(next, Some(at("2026-06-03T00:30:00Z")));
    }

    #[test]
    fn a_window_across_midnight_runs_the_job_after_midnight() {
        let window = Window::parse("22:00-02:00").unwrap();
        let time = parse_time_of_day("01:00").unwrap();
        let next = next_daily(
            time,
            at("2026-06-01T12:00:00Z"),
            &TimeZone::UTC,
            Some(&window),
        );
        assert_eq!(next, Some(at("2026-06-02T01:00:00Z")));
    }

    #[test]
    fn daylight_saving_nights_move_the_job_as_the_window_moves() {
        let window = Window::parse("02:00-04:00").unwrap();
        let time = parse_time_of_day("02:30").unwrap();
        // Spring forward: 02:30 never happens on 2026-03-29; compatible resolution gives
        // 03:30 CEST (01:30 UTC), still inside the window (open 03:00-04:00 CEST that night).
        let next = next_daily(time, at("2026-03-28T12:00:00Z"), &berlin(), Some(&window));
        assert_eq!(next, Some(at("2026-03-29T01:30:00Z")));
        // Fall back: the first pass of 02:30 (CEST, 00:30 UTC).
        let next = next_daily(time, at("2026-10-24T12:00:00Z"), &berlin(), Some(&window));
        assert_eq!(next, Some(at("2026-10-25T00:30:00Z")));
    }

    #[test]
    fn without_a_window_the_job_runs_every_day_at_its_time() {
        let time = parse_time_of_day("02:00").unwrap();
        let next = next_daily(time, at("2026-06-01T12:00:00Z"), &TimeZone::UTC, None);
        assert_eq!(next, Some(at("2026-06-02T02:00:00Z")));
    }

    #[test]
    fn a_time_outside_the_window_never_runs() {
        let window = Window::parse("02:00-04:00").unwrap();
        let time = parse_time_of_day("05:00").unwrap();
        let next = next_daily(
            time,
            at("2026-06-01T12:00:00Z"),
            &TimeZone::UTC,
            Some(&window),
        );
        assert_eq!(next, None);
    }
}
