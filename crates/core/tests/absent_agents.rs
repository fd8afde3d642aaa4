//! `[sync] absent_agents`: what the plan does with the owned assignments of tenant users who
//! are not in `agents.csv`. `keep` leaves them alone; `strip` removes every assignment the
//! catalog owns (duplicates included) and nothing anyone else owns, in a section of its own.

use std::collections::BTreeSet;

use skillsync_core::hris::{Source, read_desired};
use skillsync_core::plan::Why;
use skillsync_core::{
    AbsentAgents, Assignment, Definition, DefinitionId, Desired, Kind, Level, Live, Locale,
    PlanOptions, Style, UserAssignments, UserId, Version, plan, plan_human, plan_json,
};

fn desired() -> Desired {
    let source = |name: &str, text: &str| Source {
        name: name.to_string(),
        reader: std::io::Cursor::new(text.as_bytes().to_vec()),
    };
    read_desired(
        source(
            "catalog.csv",
            "code,kind,locale,name,description,routing_profile_id\n\
             PAY,skill,en-us,Payments,,rp-1\n\
             QUA,proficiency,en-us,Quality,,rp-1\n",
        ),
        source("agents.csv", "employee_id,user_id,locale\nE1,u-1,en-us\n"),
        source("assignments.csv", "employee_id,code,level\nE1,PAY,5\n"),
    )
    .unwrap_or_else(|p| panic!("{p:?}"))
    .desired
}

fn definition(id: &str, kind: Kind, name: &str) -> Definition {
    Definition {
        id: DefinitionId::from(id),
        kind,
        name: name.to_string(),
        locale: Locale::parse("en-us").unwrap(),
        active: true,
        description: String::new(),
        routing_profile_id: "rp-1".to_string(),
        version: Version(1),
    }
}

fn held(id: &str, level: i64) -> Assignment {
    Assignment {
        definition: DefinitionId::from(id),
        level: Level::new(level).unwrap(),
        active: true,
    }
}

fn user(id: &str, skills: Vec<Assignment>, proficiencies: Vec<Assignment>) -> UserAssignments {
    UserAssignments {
        user_id: UserId::from(id),
        skills,
        proficiencies: Some(proficiencies),
        version: Version(7),
        modified_at: None,
        unmapped: Default::default(),
    }
}

/// u-1 is the HRIS's one agent and already as desired. u-9 left the HRIS holding Payments, a
/// duplicate of it, Quality and another integration's skill; u-8 holds only the other
/// integration's; u-7 only Payments.
fn live() -> Live {
    Live {
        definitions: vec![
            definition("d-pay", Kind::Skill, "Payments"),
            definition("d-pay-dup", Kind::Skill, "Payments"),
            definition("d-qua", Kind::Proficiency, "Quality"),
            definition("d-ext", Kind::Skill, "Ext_Chat"),
        ],
        users: vec![
            user("u-1", vec![held("d-pay", 5)], Vec::new()),
            user(
                "u-9",
                vec![held("d-pay", 3), held("d-ext", 4), held("d-pay-dup", 2)],
                vec![held("d-qua", 6)],
            ),
            user("u-8", vec![held("d-ext", 4)], Vec::new()),
            user("u-7", vec![held("d-pay", 1)], Vec::new()),
        ],
        profile_ids: BTreeSet::from(["rp-1".to_string()]),
        sees_proficiencies: true,
        without_profiles: false,
    }
}

fn strip() -> PlanOptions {
    PlanOptions {
        absent_agents: AbsentAgents::Strip,
        ..PlanOptions::default()
    }
}

#[test]
fn keep_is_the_default_and_leaves_users_not_in_the_hris_alone() {
    assert_eq!(PlanOptions::default().absent_agents, AbsentAgents::Keep);
    let plan = plan(&desired(), &live(), &PlanOptions::default()).unwrap();
    assert!(plan.is_empty(), "{:?}", plan.users);
    assert_eq!(plan.totals.absent_users, 0);
    // The base of the removal percentage is the agents' owned assignments only.
    assert_eq!(plan.totals.owned_assignments_before, 1);
}

#[test]
fn strip_removes_every_owned_assignment_of_absent_users_and_nothing_else() {
    let plan = plan(&desired(), &live(), &strip()).unwrap();
    let absent: Vec<&str> = plan
        .users
        .iter()
        .filter(|u| u.absent_from_hris)
        .map(|u| u.user_id.as_str())
        .collect();
    // u-8 holds nothing skillsync owns: nothing to write.
    assert_eq!(absent, ["u-7", "u-9"], "sorted by user id");
    assert!(
        plan.users.iter().all(|u| u.absent_from_hris),
        "u-1 is unchanged"
    );

    let u9 = plan
        .users
        .iter()
        .find(|u| u.user_id.as_str() == "u-9")
        .unwrap();
    assert_eq!(u9.version, Version(7), "the write carries the version read");
    let skills = u9.skills.as_ref().unwrap();
    let kept: Vec<&str> = skills
        .after
        .iter()
        .map(|a| match &a.definition {
            skillsync_core::plan::DefinitionRef::Existing(id) => id.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kept,
        ["d-ext"],
        "another integration's skill is carried through"
    );
    let proficiencies = u9.proficiencies.as_ref().unwrap();
    assert!(proficiencies.after.is_empty());
    let removed: Vec<(&str, Why)> = u9
        .changes()
        .map(|c| {
            assert!(c.is_remove(), "{c:?}");
            let skillsync_core::plan::DefinitionRef::Existing(id) = &c.definition else {
                panic!("{c:?}")
            };
            (id.as_str(), c.why)
        })
        .collect();
    // The duplicate counts as a real removal too: the user keeps no variant of it.
    assert_eq!(
        removed,
        [
            ("d-pay", Why::NotDesired),
            ("d-pay-dup", Why::NotDesired),
            ("d-qua", Why::NotDesired)
        ]
    );
    assert!(!u9.left_without_skills, "u-9 keeps Ext_Chat");
    let u7 = plan
        .users
        .iter()
        .find(|u| u.user_id.as_str() == "u-7")
        .unwrap();
    assert!(u7.left_without_skills, "u-7 held only Payments");

    let t = &plan.totals;
    assert_eq!((t.absent_users, t.absent_assignments_removed), (2, 4));
    assert_eq!(
        (t.users_changed, t.assignments_removed),
        (0, 0),
        "agents' counts apart"
    );
    assert_eq!(
        t.owned_assignments_before,
        1 + 3 + 1,
        "absent users' owned ones join the base"
    );
    assert_eq!(t.users_left_without_skills, 1);
    assert_eq!(t.user_writes, 2);
}

#[test]
fn strip_touches_only_the_lists_the_dialect_reads() {
    // The users dialect: no proficiencies seen or written.
    let mut live = live();
    live.sees_proficiencies = false;
    for user in &mut live.users {
        user.proficiencies = None;
    }
    let plan = plan(&desired(), &live, &strip()).unwrap();
    let u9 = plan
        .users
        .iter()
        .find(|u| u.user_id.as_str() == "u-9")
        .unwrap();
    assert!(u9.proficiencies.is_none());
    assert!(u9.changes().all(|c| c.kind == Kind::Skill));
    assert_eq!(plan.totals.absent_assignments_removed, 3);
}

#[test]
fn strip_is_shown_in_a_section_of_its_own() {
    let plan = plan(&desired(), &live(), &strip()).unwrap();
    let text = plan_human(&plan, Style { color: false });
    assert!(
        text.contains("Agents no longer in the HRIS: 2 users, 4 owned assignments removed"),
        "{text}"
    );
    assert!(!text.contains("By agent"), "no agent changes: {text}");
    assert!(text.contains("user u-9 · version 7"), "{text}");
    assert!(
        text.contains("2 users no longer in the HRIS lose 4 owned assignments"),
        "headline: {text}"
    );
    assert!(
        text.contains("Safety: 4 removals (80.0% of 5 owned assignments)"),
        "{text}"
    );

    let json = plan_json(&plan);
    assert_eq!(json["users"].as_array().unwrap().len(), 0);
    let absent = json["absentAgents"].as_array().unwrap();
    assert_eq!(absent.len(), 2);
    assert_eq!(absent[1]["userId"], "u-9");
    assert_eq!(absent[1]["version"], 7);
    assert!(absent[1].get("employeeId").is_none());
    assert_eq!(json["totals"]["absentUsers"], 2);
    assert_eq!(json["totals"]["absentAssignmentsRemoved"], 4);
}

#[test]
fn a_takeover_by_a_strip_names_the_users_by_their_tenant_id() {
    let desired = desired();
    let plan = plan(&desired, &live(), &strip()).unwrap();
    let ownership = skillsync_core::Ownership {
        managed: BTreeSet::new(),
        adopt: skillsync_core::Adopt::Nothing,
    };
    let conflicts = skillsync_core::check_takeovers(&plan, &desired, &ownership).unwrap_err();
    let payments = conflicts
        .iter()
        .find(|p| p.message.contains("id d-pay)"))
        .unwrap_or_else(|| panic!("{conflicts:?}"));
    assert!(
        payments.message.contains("(agents user u-7, user u-9)"),
        "{}",
        payments.message
    );
}
