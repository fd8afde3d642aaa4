//! The proficiency scale: how an HRIS [`Level`] (1–10, 10 best) reads as a tenant value in a
//! dialect with its own scale, such as CXone's proficiency (1–20, **1 best**).
//!
//! The table is one-to-one so that a value read back from the tenant names exactly one level: a
//! value no level maps to (one someone set by hand) reads as no level, never as the nearest
//! one, so the planner sees it as a difference to correct rather than silently accepting it.

use std::fmt;

use crate::domain::Level;

/// Lowest tenant value (the best proficiency in CXone).
const TENANT_MIN: u8 = 1;
/// Highest tenant value.
const TENANT_MAX: u8 = 20;
/// How many HRIS levels there are (`Level::MIN` to `Level::MAX`).
const LEVELS: usize = 10;

/// A one-to-one table from HRIS [`Level`] to a tenant value in 1–20.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProficiencyScale {
    /// The tenant value of level `i + 1`.
    to_tenant: [u8; LEVELS],
}

/// Why a proficiency table was refused.
///
/// [`ProficiencyScale::from_table`] reports the first problem it meets, in the order the
/// entries are given; missing levels are reported last, all together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaleError {
    /// An entry for a level that is not an HRIS level.
    #[error("level {level} is outside 1..=10: the table maps the HRIS levels 1 to 10")]
    LevelOutOfRange {
        /// The level given.
        level: i64,
    },
    /// An entry whose tenant value the tenant would refuse.
    #[error(
        "tenant value {value} for level {level} is outside 1..=20: give a value from 1 (best) to 20"
    )]
    ValueOutOfRange {
        /// The level it is for.
        level: Level,
        /// The value given.
        value: i64,
    },
    /// Two entries for one level.
    #[error("level {level} is listed twice (tenant values {first} and {second}): keep one of them")]
    LevelRepeated {
        /// The level.
        level: Level,
        /// The tenant value of its first entry.
        first: u8,
        /// The tenant value of its second entry.
        second: u8,
    },
    /// Two levels with one tenant value: reading it back could not tell them apart.
    #[error(
        "level {first} and level {second} both map to tenant value {value}: the table must be one-to-one"
    )]
    NotOneToOne {
        /// The level listed first.
        first: Level,
        /// The level listed second.
        second: Level,
        /// The value both map to.
        value: u8,
    },
    /// Levels without an entry, in increasing order (never empty).
    #[error("{}", missing_message(.0))]
    Missing(Vec<Level>),
}

/// "level 4 is missing: …", "levels 4 and 9 are missing: …", "levels 1, 4 and 9 are …".
fn missing_message(levels: &[Level]) -> String {
    let shown: Vec<String> = levels.iter().map(Level::to_string).collect();
    let what = match shown.as_slice() {
        [] => return "no level is missing".to_string(),
        [one] => format!("level {one} is"),
        [init @ .., last] => format!("levels {} and {last} are", init.join(", ")),
    };
    format!("{what} missing: every level from 1 to 10 needs a tenant value")
}

impl ProficiencyScale {
    /// CXone's default: level L reads as 21 − 2L (10 → 1, 9 → 3, …, 1 → 19), the odd values,
    /// so that the best level is the best proficiency.
    pub fn cxone_default() -> ProficiencyScale {
        let mut to_tenant = [0; LEVELS];
        for (i, value) in to_tenant.iter_mut().enumerate() {
            let level = i as u8 + 1;
            *value = 21 - 2 * level;
        }
        ProficiencyScale { to_tenant }
    }

    /// A table from `(level, tenant value)` entries, in any order: every level 1–10 exactly
    /// once, every value within 1–20, and no value given to two levels. The numbers are taken
    /// as written in a configuration file, so out-of-range ones are reported, not truncated.
    pub fn from_table(entries: &[(i64, i64)]) -> Result<ProficiencyScale, ScaleError> {
        let mut to_tenant: [Option<u8>; LEVELS] = [None; LEVELS];
        let mut to_level: [Option<Level>; TENANT_MAX as usize + 1] =
            [None; TENANT_MAX as usize + 1];
        for &(level, value) in entries {
            let level = Level::new(level).map_err(|_| ScaleError::LevelOutOfRange { level })?;
            let tenant = u8::try_from(value)
                .ok()
                .filter(|v| (TENANT_MIN..=TENANT_MAX).contains(v))
                .ok_or(ScaleError::ValueOutOfRange { level, value })?;
            let slot = &mut to_tenant[usize::from(level.get()) - 1];
            if let Some(first) = *slot {
                return Err(ScaleError::LevelRepeated {
                    level,
                    first,
                    second: tenant,
                });
            }
            let owner = &mut to_level[usize::from(tenant)];
            if let Some(first) = *owner {
                return Err(ScaleError::NotOneToOne {
                    first,
                    second: level,
                    value: tenant,
                });
            }
            *slot = Some(tenant);
            *owner = Some(level);
        }
        let missing: Vec<Level> = (1..=LEVELS)
            .filter(|&l| to_tenant[l - 1].is_none())
            .map(|l| Level::new(l as i64).expect("1..=10 are levels"))
            .collect();
        if !missing.is_empty() {
            return Err(ScaleError::Missing(missing));
        }
        Ok(ProficiencyScale {
            to_tenant: to_tenant.map(|v| v.expect("every level was checked present")),
        })
    }

    /// The tenant value of `level`.
    pub fn to_tenant(&self, level: Level) -> u8 {
        self.to_tenant[usize::from(level.get()) - 1]
    }

    /// The level whose tenant value is `tenant_value`; `None` when no level maps to it (a
    /// value set by hand in the tenant, or outside 1–20). Never rounded to a nearby level.
    pub fn to_level(&self, tenant_value: u8) -> Option<Level> {
        let i = self.to_tenant.iter().position(|&v| v == tenant_value)?;
        Some(Level::new(i as i64 + 1).expect("1..=10 are levels"))
    }

    /// Every `(level, tenant value)`, levels 1 to 10 in order: what a configuration file
    /// writes to reproduce this table with [`ProficiencyScale::from_table`].
    pub fn entries(&self) -> impl Iterator<Item = (Level, u8)> + '_ {
        self.to_tenant
            .iter()
            .enumerate()
            .map(|(i, &v)| (Level::new(i as i64 + 1).expect("1..=10 are levels"), v))
    }
}

impl fmt::Display for ProficiencyScale {
    /// `1→19, 2→17, …`: the table in one line, for messages and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, (level, value)) in self.entries().enumerate() {
            if k > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{level}→{value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn level(l: i64) -> Level {
        Level::new(l).unwrap()
    }

    /// The default table as entries, for tests that break it in one place.
    fn default_entries() -> Vec<(i64, i64)> {
        (1..=10).map(|l| (l, 21 - 2 * l)).collect()
    }

    fn refused(entries: &[(i64, i64)]) -> ScaleError {
        ProficiencyScale::from_table(entries).unwrap_err()
    }

    #[test]
    fn the_cxone_default_puts_the_best_level_at_the_best_value() {
        let scale = ProficiencyScale::cxone_default();
        let values: Vec<u8> = (1..=10).map(|l| scale.to_tenant(level(l))).collect();
        assert_eq!(values, [19, 17, 15, 13, 11, 9, 7, 5, 3, 1]);
        assert_eq!(scale.to_level(1), Some(level(10)));
        assert_eq!(scale.to_level(3), Some(level(9)));
        assert_eq!(scale.to_level(19), Some(level(1)));
        assert_eq!(
            scale.to_string(),
            "1→19, 2→17, 3→15, 4→13, 5→11, 6→9, 7→7, 8→5, 9→3, 10→1"
        );
    }

    #[test]
    fn a_value_no_level_maps_to_reads_as_no_level_and_is_not_rounded() {
        let scale = ProficiencyScale::cxone_default();
        for value in [0, 2, 4, 10, 18, 20, 21, 255] {
            assert_eq!(scale.to_level(value), None, "{value}");
        }
    }

    #[test]
    fn the_default_table_written_out_reads_back_as_itself() {
        let scale = ProficiencyScale::cxone_default();
        let entries: Vec<(i64, i64)> = scale
            .entries()
            .map(|(l, v)| (i64::from(l.get()), i64::from(v)))
            .collect();
        assert_eq!(entries, default_entries());
        assert_eq!(ProficiencyScale::from_table(&entries), Ok(scale));
    }

    #[test]
    fn entries_come_in_level_order_whatever_order_the_table_was_given_in() {
        let mut entries = default_entries();
        entries.reverse();
        entries.swap(2, 7);
        let scale = ProficiencyScale::from_table(&entries).unwrap();
        assert_eq!(scale, ProficiencyScale::cxone_default());
        let levels: Vec<u8> = scale.entries().map(|(l, _)| l.get()).collect();
        assert_eq!(levels, (1..=10).collect::<Vec<u8>>());
    }

    #[test]
    fn a_table_giving_two_levels_one_value_is_refused_naming_both() {
        let mut entries = default_entries();
        entries[7] = (8, 7); // level 7 already has 7.
        let err = refused(&entries);
        assert_eq!(
            err,
            ScaleError::NotOneToOne {
                first: level(7),
                second: level(8),
                value: 7
            }
        );
        assert_eq!(
            err.to_string(),
            "level 7 and level 8 both map to tenant value 7: the table must be one-to-one"
        );
    }

    #[test]
    fn a_missing_level_is_named() {
        let mut entries = default_entries();
        entries.remove(3);
        let err = refused(&entries);
        assert_eq!(err, ScaleError::Missing(vec![level(4)]));
        assert_eq!(
            err.to_string(),
            "level 4 is missing: every level from 1 to 10 needs a tenant value"
        );
    }

    #[test]
    fn several_missing_levels_are_named_together() {
        let entries: Vec<(i64, i64)> = default_entries()
            .into_iter()
            .filter(|&(l, _)| ![1, 4, 9].contains(&l))
            .collect();
        assert_eq!(
            refused(&entries).to_string(),
            "levels 1, 4 and 9 are missing: every level from 1 to 10 needs a tenant value"
        );
        assert_eq!(
            refused(&entries[..entries.len() - 1]).to_string(),
            "levels 1, 4, 9 and 10 are missing: every level from 1 to 10 needs a tenant value"
        );
        assert_eq!(
            refused(&[]),
            ScaleError::Missing((1..=10).map(level).collect())
        );
    }

    #[test]
    fn a_tenant_value_outside_one_to_twenty_is_refused_with_its_level() {
        for value in [0, 21, 25, -1, 256, i64::MAX] {
            let mut entries = default_entries();
            entries[2] = (3, value);
            assert_eq!(
                refused(&entries),
                ScaleError::ValueOutOfRange {
                    level: level(3),
                    value
                }
            );
        }
        let mut entries = default_entries();
        entries[2] = (3, 25);
        assert_eq!(
            refused(&entries).to_string(),
            "tenant value 25 for level 3 is outside 1..=20: give a value from 1 (best) to 20"
        );
        // The limits themselves are allowed.
        let mut entries = default_entries();
        entries[0] = (1, 20);
        assert_eq!(
            ProficiencyScale::from_table(&entries)
                .unwrap()
                .to_tenant(level(1)),
            20
        );
    }

    #[test]
    fn a_level_outside_one_to_ten_is_refused() {
        for bad in [0, 11, -3, i64::MIN] {
            let mut entries = default_entries();
            entries.push((bad, 20));
            assert_eq!(
                refused(&entries),
                ScaleError::LevelOutOfRange { level: bad }
            );
        }
        let mut entries = default_entries();
        entries.push((11, 20));
        assert_eq!(
            refused(&entries).to_string(),
            "level 11 is outside 1..=10: the table maps the HRIS levels 1 to 10"
        );
    }

    #[test]
    fn a_level_listed_twice_is_refused_even_with_the_same_value() {
        let mut entries = default_entries();
        entries.push((5, 20));
        let err = refused(&entries);
        assert_eq!(
            err,
            ScaleError::LevelRepeated {
                level: level(5),
                first: 11,
                second: 20
            }
        );
        assert_eq!(
            err.to_string(),
            "level 5 is listed twice (tenant values 11 and 20): keep one of them"
        );
        let mut entries = default_entries();
        entries.push((5, 11));
        assert!(matches!(
            refused(&entries),
            ScaleError::LevelRepeated { .. }
        ));
    }

    #[test]
    fn the_first_problem_in_table_order_is_reported_before_missing_levels() {
        // Level 2 missing, and level 30 out of range further down: the entry is reported.
        let entries = [(1, 19), (3, 15), (30, 1)];
        assert_eq!(refused(&entries), ScaleError::LevelOutOfRange { level: 30 });
    }

    /// A random one-to-one table: ten distinct values from 1–20 for levels 1–10, and the
    /// order its entries are listed in.
    fn injective_table() -> impl Strategy<Value = Vec<(i64, i64)>> {
        proptest::sample::subsequence((1..=20).collect::<Vec<i64>>(), 10)
            .prop_shuffle()
            .prop_map(|values| {
                values
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (i as i64 + 1, v))
                    .collect::<Vec<_>>()
            })
            .prop_shuffle()
    }

    proptest! {
        #[test]
        fn every_one_to_one_table_reads_each_level_back_and_nothing_else(
            entries in injective_table()
        ) {
            let scale = ProficiencyScale::from_table(&entries).unwrap();
            for l in 1..=10 {
                let l = level(l);
                let value = scale.to_tenant(l);
                prop_assert!((1..=20).contains(&value));
                prop_assert_eq!(scale.to_level(value), Some(l));
            }
            let image: Vec<u8> = scale.entries().map(|(_, v)| v).collect();
            for value in 0..=u8::MAX {
                if !image.contains(&value) {
                    prop_assert_eq!(scale.to_level(value), None);
                }
            }
            // Written out and read back, the table is the same.
            let written: Vec<(i64, i64)> = scale
                .entries()
                .map(|(l, v)| (i64::from(l.get()), i64::from(v)))
                .collect();
            let mut sorted = entries.clone();
            sorted.sort();
            prop_assert_eq!(&written, &sorted);
            prop_assert_eq!(ProficiencyScale::from_table(&written), Ok(scale));
        }
    }
}
