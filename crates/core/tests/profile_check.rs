//! The routing profiles a plan must check, and so a run must list: only those a definition
//! it creates, reactivates or updates names, and of those only the ones no definition of the
//! tenant already names. A no-change run lists none; a definition to create naming a profile
//! the tenant lacks is still refused at its catalog line before any write.

use std::collections::BTreeSet;

use skillsync_core::hris::{Source, read_desired};
use skillsync_core::{
    Definition, DefinitionId, Desired, Kind, Live, Locale, PlanOptions, Problem, Version, plan,
};

fn desired(catalog_rows: &str) -> Desired {
    let source = |name: &str, text: &str| Source {
        name: name.to_string(),
        reader: std::io::Cursor::new(text.as_bytes().to_vec()),
    };
    read_desired(
        source(
            "catalog.csv",
            &format!(
                "code,kind,locale,name,description,routing_profile_id\n{catalog_rows}\
                 BASE,skill,en-us,Base,,rp-1\n"
            ),
        ),
        source("agents.csv", "employee_id,user_id,locale\nE1,u-1,en-us\n"),
        source("assignments.csv", "employee_id,code,level\nE1,BASE,5\n"),
    )
    .unwrap_or_else(|p| panic!("{p:?}"))
    .desired
}

fn definition(id: &str, name: &str, active: bool, profile: &str) -> Definition {
    Definition {
        id: DefinitionId::from(id),
        kind: Kind::Skill,
        name: name.to_string(),
        locale: Locale::parse("en-us").unwrap(),
        active,
        description: String::new(),
        routing_profile_id: profile.to_string(),
        version: Version(1),
    }
}

/// The tenant as read without its profile list: BASE and PAY exist (profile rp-1), OLD is
/// inactive. The one agent's user is not in it (the plan skips the agent).
fn live() -> Live {
    Live {
        definitions: vec![
            definition("d-base", "Base", true, "rp-1"),
            definition("d-pay", "Payments", true, "rp-1"),
            definition("d-old", "Old", false, "rp-1"),
        ],
        sees_proficiencies: true,
        ..Live::default()
    }
}

fn ids(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

fn errors(problems: &[Problem]) -> Vec<String> {
    problems
        .iter()
        .filter(|p| p.is_error())
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_catalog_that_writes_no_definition_checks_no_profile() {
    let desired = desired("PAY,skill,en-us,Payments,,rp-1\n");
    assert_eq!(live().profiles_to_check(&desired.catalog), ids(&[]));
    let plan = plan(&desired, &live(), &PlanOptions::default()).unwrap();
    assert!(plan.definitions.is_empty());
}

#[test]
fn a_definition_written_naming_a_profile_no_definition_names_is_checked() {
    for row in [
        // Created.
        "NEW,skill,en-us,New,,rp-9\n",
        // Updated: its profile changes.
        "PAY,skill,en-us,Payments,,rp-9\n",
        // Reactivated.
        "OLD,skill,en-us,Old,,rp-9\n",
    ] {
        let desired = desired(row);
        assert_eq!(
            live().profiles_to_check(&desired.catalog),
            ids(&["rp-9"]),
            "{row}"
        );
        let listed = Live {
            profile_ids: ids(&["rp-1", "rp-9"]),
            ..live()
        };
        assert!(
            plan(&desired, &listed, &PlanOptions::default()).is_ok(),
            "{row}"
        );
    }
}

/// The tenant refused any definition naming a profile it does not have, and profiles cannot
/// be deleted: one its definitions name exists without asking.
#[test]
fn a_profile_a_tenant_definition_names_needs_no_listing() {
    let desired = desired("NEW,skill,en-us,New,,rp-1\n");
    assert_eq!(live().profiles_to_check(&desired.catalog), ids(&[]));
    let plan = plan(&desired, &live(), &PlanOptions::default()).unwrap();
    assert_eq!(plan.definitions.len(), 1, "NEW is created");
}

/// Listed and absent: refused at its catalog line and field, as before the listing became
/// conditional.
#[test]
fn a_definition_to_create_with_a_profile_the_tenant_lacks_is_refused_at_its_line() {
    let desired = desired("PAY,skill,en-us,Payments,,rp-1\nNEW,skill,en-us,New,,rp-9\n");
    let listed = Live {
        profile_ids: ids(&["rp-1"]),
        ..live()
    };
    let problems = plan(&desired, &listed, &PlanOptions::default()).unwrap_err();
    assert_eq!(
        errors(&problems),
        vec![
            "catalog.csv:3:6: error: routing profile rp-9 of skill New (en-us) does not exist in \
             the tenant (field `routing_profile_id`)\n  hint: use the id of an existing routing \
             profile (GET /routing/profiles); the tenant refuses definitions without one"
                .to_string()
        ]
    );
}

#[test]
fn a_dialect_without_profiles_checks_none() {
    let desired = desired("NEW,skill,en-us,New,,rp-9\n");
    let live = Live {
        without_profiles: true,
        ..live()
    };
    assert_eq!(live.profiles_to_check(&desired.catalog), ids(&[]));
    assert!(plan(&desired, &live, &PlanOptions::default()).is_ok());
}
