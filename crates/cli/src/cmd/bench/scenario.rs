//! A benchmark scenario: a generated tenant, HRIS files that agree with it except for an exact
//! share of agents, and the same change set spelled out for the naive baseline.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use skillsync_sim::TenantDoc;

/// Where one changed agent's skill goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkillTarget {
    /// A definition the tenant already has.
    Existing(String),
    /// A new code's variant in the agent's locale, created by the sync.
    New {
        /// The code (also the definition's name).
        code: String,
        /// The agent's locale.
        locale: String,
    },
}

/// One agent's change: exactly one skill set to a level, the unit of work of the second source
/// document's script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillChange {
    /// The tenant's user id.
    pub user_id: String,
    /// Which skill.
    pub skill: SkillTarget,
    /// Its new level.
    pub level: u8,
}

/// A definition the HRIS catalog has and the tenant does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDefinition {
    /// Code and name.
    pub code: String,
    /// Locale.
    pub locale: String,
    /// The routing profile it is scoped to.
    pub routing_profile_id: String,
}

/// What the HRIS files ask of the tenant.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// One change per changed agent.
    pub changes: Vec<SkillChange>,
    /// New codes' variants, one per locale.
    pub new_definitions: Vec<NewDefinition>,
    /// Agents in the HRIS (every user of the tenant).
    pub agents: usize,
}

/// `catalog.csv` listing every definition of `doc` except the other integration's (`Ext_`), one
/// code per name, with each definition's id mapped to its code.
pub fn catalog_csv(doc: &TenantDoc) -> anyhow::Result<(String, BTreeMap<&str, &str>)> {
    catalog_csv_of(doc, true)
}

fn catalog_csv_of(
    doc: &TenantDoc,
    proficiencies: bool,
) -> anyhow::Result<(String, BTreeMap<&str, &str>)> {
    let mut catalog = String::from("code,kind,locale,name,description,routing_profile_id\n");
    let mut code_of = BTreeMap::new();
    let kinds: &[(&str, &Vec<skillsync_sim::Definition>)] = if proficiencies {
        &[("skill", &doc.skills), ("proficiency", &doc.proficiencies)]
    } else {
        &[("skill", &doc.skills)]
    };
    for &(kind, definitions) in kinds {
        for d in definitions
            .iter()
            .filter(|d| !d.name.starts_with(skillsync_sim::OWNED_PREFIX))
        {
            writeln!(
                catalog,
                "{},{kind},{},{},{},{}",
                d.name, d.locale, d.name, d.description, d.routing_profile_id
            )?;
            code_of.insert(d.id.as_str(), d.name.as_str());
        }
    }
    Ok((catalog, code_of))
}

/// Writes `catalog.csv`, `agents.csv` and `assignments.csv` under `dir/hris` for `doc`: every
/// agent keeps exactly what it holds, except `changed_share` of them (spread evenly), each with one
/// skill change. Every fifth changed agent, and any holding no catalog skill, gets one of
/// `new_codes` new skill codes (defined in every locale); the others get one level changed.
pub fn write_hris(
    dir: &Path,
    doc: &TenantDoc,
    changed_share: f64,
    new_codes: usize,
) -> anyhow::Result<Scenario> {
    write_hris_for(dir, doc, changed_share, new_codes, None)
}

/// [`write_hris`] for the CXone dialect's view of `doc` (`cxone`): skills only (it has no
/// proficiency definitions), and the agents' integer ids as user ids.
pub fn write_hris_for(
    dir: &Path,
    doc: &TenantDoc,
    changed_share: f64,
    new_codes: usize,
    cxone: Option<&skillsync_sim::cxone::CxoneTenant>,
) -> anyhow::Result<Scenario> {
    let hris = dir.join("hris");
    std::fs::create_dir_all(&hris).with_context(|| format!("cannot create {}", hris.display()))?;
    let agent_of: BTreeMap<&str, u64> = cxone
        .map(|t| {
            t.agents()
                .map(|a| (a.user_id.as_str(), a.agent_id))
                .collect()
        })
        .unwrap_or_default();
    let no_proficiencies: &[skillsync_sim::Assignment] = &[];

    let (mut catalog, code_of) = catalog_csv_of(doc, cxone.is_none())?;
    let skill_ids: std::collections::BTreeSet<&str> = doc
        .skills
        .iter()
        .filter(|d| code_of.contains_key(d.id.as_str()))
        .map(|d| d.id.as_str())
        .collect();
    let mut locales: Vec<&str> = doc.skills.iter().map(|d| d.locale.as_str()).collect();
    locales.sort_unstable();
    locales.dedup();
    let profile = doc
        .profiles
        .first()
        .map(|p| p.id.clone())
        .context("the generated tenant has no routing profile")?;
    let new_code_names: Vec<String> = (1..=new_codes).map(|n| format!("Bench_New_{n}")).collect();
    let mut new_definitions = Vec::new();
    for code in &new_code_names {
        for locale in &locales {
            writeln!(
                catalog,
                "{code},skill,{locale},{code},Added by the benchmark ({locale}),{profile}"
            )?;
            new_definitions.push(NewDefinition {
                code: code.clone(),
                locale: locale.to_string(),
                routing_profile_id: profile.clone(),
            });
        }
    }

    let mut agents = String::from("employee_id,user_id,locale\n");
    let mut assignments = String::from("employee_id,code,level,active\n");
    let mut changes = Vec::new();
    for (i, user) in doc.users.iter().enumerate() {
        let employee = format!("E{:06}", i + 1);
        match agent_of.get(user.id.as_str()) {
            Some(agent) => writeln!(agents, "{employee},{agent},{}", user.locale)?,
            None => writeln!(agents, "{employee},{},{}", user.id, user.locale)?,
        }
        let proficiencies = if cxone.is_some() {
            no_proficiencies
        } else {
            &user.proficiencies
        };
        let mut rows: Vec<(String, u8, bool)> = user
            .skills
            .iter()
            .chain(proficiencies)
            .filter_map(|a| {
                code_of
                    .get(a.id.as_str())
                    .map(|code| (code.to_string(), a.level, a.active))
            })
            .collect();
        // Spreads exactly round(share × agents) changes evenly over the agents.
        let changed = ((i + 1) as f64 * changed_share).floor() > (i as f64 * changed_share).floor();
        if changed {
            let nth = changes.len();
            let first_skill = user
                .skills
                .iter()
                .position(|a| skill_ids.contains(a.id.as_str()));
            let change = match first_skill {
                Some(at) if new_codes == 0 || nth % 5 != 0 => {
                    let held = &user.skills[at];
                    let level = held.level % 10 + 1;
                    let row = rows
                        .iter_mut()
                        .find(|(code, _, _)| code == code_of[held.id.as_str()])
                        .expect("every catalog skill held has a row");
                    row.1 = level;
                    SkillChange {
                        user_id: user.id.clone(),
                        skill: SkillTarget::Existing(held.id.clone()),
                        level,
                    }
                }
                _ if new_codes > 0 => {
                    let code = new_code_names[(nth / 5) % new_codes].clone();
                    rows.push((code.clone(), 5, true));
                    SkillChange {
                        user_id: user.id.clone(),
                        skill: SkillTarget::New {
                            code,
                            locale: user.locale.clone(),
                        },
                        level: 5,
                    }
                }
                _ => continue,
            };
            changes.push(change);
        }
        for (code, level, active) in rows {
            writeln!(assignments, "{employee},{code},{level},{active}")?;
        }
    }
    for (name, text) in [
        ("catalog.csv", catalog),
        ("agents.csv", agents),
        ("assignments.csv", assignments),
    ] {
        let path = hris.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(Scenario {
        changes,
        new_definitions,
        agents: doc.users.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(agents: usize) -> TenantDoc {
        skillsync_sim::generate(&skillsync_sim::GenerateOptions {
            agents,
            ..skillsync_sim::GenerateOptions::default()
        })
    }

    #[test]
    fn the_changed_share_is_exact_and_one_change_per_agent() {
        let dir = std::env::temp_dir().join(format!("skillsync-scenario-{}", std::process::id()));
        let doc = tenant(1000);
        let scenario = write_hris(&dir, &doc, 0.3, 2).expect("writes");
        assert_eq!(scenario.changes.len(), 300);
        let users: std::collections::BTreeSet<_> =
            scenario.changes.iter().map(|c| &c.user_id).collect();
        assert_eq!(users.len(), 300);
        assert_eq!(
            scenario.new_definitions.len(),
            2 * 2,
            "two codes in en-us and de-de"
        );
        for (nth, change) in scenario.changes.iter().enumerate() {
            let user = doc
                .users
                .iter()
                .find(|u| u.id == change.user_id)
                .expect("a tenant user");
            match &change.skill {
                SkillTarget::New { locale, .. } => assert_eq!(locale, &user.locale),
                SkillTarget::Existing(id) => {
                    assert_ne!(nth % 5, 0, "every fifth changed agent gets a new code");
                    let held = user.skills.iter().find(|a| &a.id == id).expect("held");
                    assert_ne!(held.level, change.level, "a real change");
                }
            }
        }
        let assignments =
            std::fs::read_to_string(dir.join("hris/assignments.csv")).expect("written");
        assert!(assignments.contains(",Bench_New_1,5,true"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
