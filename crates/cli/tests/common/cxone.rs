//! HRIS files and a config for the simulator's CXone dialect (`docs/sim-cxone.md`): the
//! dialect's tenant is derived from the generated one, so are the files.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;
use skillsync_sim::TenantDoc;
use skillsync_sim::cxone::CxoneTenant;

/// Writes `skillsync.toml` for the cxone dialect of the simulator at `base`.
pub fn write_cxone_config(dir: &Path, base: &str, extra: &str) {
    let config = format!(
        r#"[tenant]
api_base = "{base}/incontactapi/services/v31.0"
token_url = "{base}/api/v2/oauth/token"
client_id = "{id}"
client_secret = {{ env = "SKILLSYNC_TEST_SECRET" }}
dialect = "cxone"
name_pattern = "{{code}}_{{locale}}"

[limits]
requests_per_second = 1000
burst = 100
max_in_flight = 8

[source]
catalog = "hris/catalog.csv"
agents = "hris/agents.csv"
assignments = "hris/assignments.csv"
{extra}"#,
        id = skillsync_sim::DEMO_CLIENT_ID
    );
    std::fs::write(dir.join("skillsync.toml"), config).unwrap();
}

/// Assignments by (skill name, agent id): (proficiency, active).
pub type Held = BTreeMap<(String, u64), (u8, bool)>;

/// What the files ask of the tenant: (skill name, agent id) → (proficiency, active), for the
/// catalog's skills; and how many assignments change.
#[derive(Debug, Default)]
pub struct CxoneExpected {
    pub wanted: Held,
    pub changed_agents: usize,
    pub removed: usize,
}

/// The HRIS level a generated proficiency stands for (`21 - 2 × level`).
pub fn level_of(proficiency: u8) -> u8 {
    (21 - proficiency) / 2
}

/// Writes HRIS files for the dialect's tenant: every agent, their skills as the tenant holds
/// them, with some levels changed, some removed and some added (as `write_hris` does).
pub fn write_cxone_hris(dir: &Path, doc: &TenantDoc) -> CxoneExpected {
    let tenant = CxoneTenant::from_doc(doc);
    let locale_of: BTreeMap<&str, &str> = doc
        .users
        .iter()
        .map(|u| (u.id.as_str(), u.locale.as_str()))
        .collect();
    let mut catalog = String::from("code,kind,locale,name,description,routing_profile_id\n");
    // skill id → (code, locale)
    let mut codes: BTreeMap<u64, (String, String)> = BTreeMap::new();
    for skill in tenant.skills() {
        if skill.skill_name.starts_with(skillsync_sim::OWNED_PREFIX) {
            continue;
        }
        let (code, locale) = skill.skill_name.rsplit_once('_').unwrap();
        writeln!(
            catalog,
            "{code},skill,{locale},{code},{},p-none",
            skill.description
        )
        .unwrap();
        codes.insert(skill.skill_id, (code.to_string(), locale.to_string()));
    }
    let skill_named = |code: &str, locale: &str| format!("{code}_{locale}");
    let mut held: BTreeMap<u64, Vec<(String, u8, bool)>> = BTreeMap::new();
    for a in tenant.assignments() {
        if let Some((code, _)) = codes.get(&a.skill_id) {
            held.entry(a.agent_id).or_default().push((
                code.clone(),
                level_of(a.proficiency),
                a.is_active,
            ));
        }
    }
    let mut agents = String::from("employee_id,user_id,locale\n");
    let mut assignments = String::from("employee_id,code,level,active\n");
    let mut expected = CxoneExpected::default();
    for (i, agent) in tenant.agents().enumerate() {
        let employee = format!("E{i:05}");
        let locale = locale_of[agent.user_id.as_str()];
        writeln!(agents, "{employee},{},{locale}", agent.agent_id).unwrap();
        let mut rows = held.remove(&agent.agent_id).unwrap_or_default();
        let had: Vec<String> = rows.iter().map(|(c, _, _)| c.clone()).collect();
        let mut changed = false;
        if i % 3 == 0 && !rows.is_empty() {
            rows[0].1 = rows[0].1 % 10 + 1;
            changed = true;
        }
        if i % 7 == 0 && rows.len() > 1 {
            rows.pop();
            expected.removed += 1;
            changed = true;
        }
        if i % 5 == 0
            && let Some((code, _)) = codes
                .values()
                .find(|(code, l)| l == locale && !had.contains(code))
        {
            rows.push((code.clone(), 4, true));
            changed = true;
        }
        expected.changed_agents += usize::from(changed);
        for (code, level, active) in rows {
            writeln!(assignments, "{employee},{code},{level},{active}").unwrap();
            expected.wanted.insert(
                (skill_named(&code, locale), agent.agent_id),
                (21 - 2 * level, active),
            );
        }
    }
    std::fs::write(dir.join("hris/catalog.csv"), catalog).unwrap();
    std::fs::write(dir.join("hris/agents.csv"), agents).unwrap();
    std::fs::write(dir.join("hris/assignments.csv"), assignments).unwrap();
    expected
}

/// The dialect's assignments from `/sim/state`, by (skill name, agent id), split into the
/// catalog's and the other integration's (`Ext_`).
pub fn cxone_assignments(state: &Value) -> (Held, Held) {
    let names: BTreeMap<u64, &str> = state["cxone"]["skills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["skillId"].as_u64().unwrap(),
                s["skillName"].as_str().unwrap(),
            )
        })
        .collect();
    let (mut catalog, mut other) = (BTreeMap::new(), BTreeMap::new());
    for a in state["cxone"]["assignments"].as_array().unwrap() {
        let name = names[&a["skillId"].as_u64().unwrap()].to_string();
        let key = (name.clone(), a["agentId"].as_u64().unwrap());
        let value = (
            a["proficiency"].as_u64().unwrap() as u8,
            a["isActive"].as_bool().unwrap(),
        );
        if name.starts_with(skillsync_sim::OWNED_PREFIX) {
            other.insert(key, value);
        } else {
            catalog.insert(key, value);
        }
    }
    (catalog, other)
}
