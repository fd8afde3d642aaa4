//! A catalog variant retired with `skillsync retire` is left out of every plan: never
//! reactivated or recreated, and no assignment of it added, changed or removed, even while the
//! HRIS still lists it.

use std::collections::BTreeSet;

use skillsync_core::hris::{Source, read_desired};
use skillsync_core::plan::DefinitionActionKind;
use skillsync_core::{
    Assignment, Code, Definition, DefinitionId, Desired, Kind, Level, Live, Locale, PlanOptions,
    Retired, RetiredMode, UserAssignments, UserId, Version, plan, resolve,
};

fn locale(tag: &str) -> Locale {
    Locale::parse(tag).unwrap()
}

fn desired() -> Desired {
    desired_with(Vec::new())
}

fn desired_with(retired: Vec<Retired>) -> Desired {
    let source = |name: &str, text: &str| Source {
        name: name.to_string(),
        reader: std::io::Cursor::new(text.as_bytes().to_vec()),
    };
    let loaded = read_desired(
        source(
            "catalog.csv",
            "code,kind,locale,name,description,routing_profile_id\n\
             ACW,proficiency,de-de,ACW_Sales,,rp-1\n\
             ACW,proficiency,en-us,ACW_Sales,,rp-1\n\
             PAY,skill,de-de,Payments,,rp-1\n",
        ),
        source(
            "agents.csv",
            "employee_id,user_id,locale\nE1,u-1,de-de\nE2,u-2,de-de\nE3,u-3,de-de\n",
        ),
        // E1 holds ACW at 3 but the HRIS says 7; E2 should gain it; E3 holds it and should not.
        source(
            "assignments.csv",
            "employee_id,code,level\nE1,ACW,7\nE1,PAY,5\nE2,ACW,4\nE2,PAY,5\nE3,PAY,5\n",
        ),
    )
    .unwrap_or_else(|p| panic!("{p:?}"));
    Desired {
        retired,
        ..loaded.desired
    }
}

fn definition(id: &str, kind: Kind, name: &str, active: bool) -> Definition {
    Definition {
        id: DefinitionId::from(id),
        kind,
        name: name.to_string(),
        locale: locale("de-de"),
        active,
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

fn user(id: &str, proficiencies: Vec<Assignment>) -> UserAssignments {
    UserAssignments {
        user_id: UserId::from(id),
        skills: vec![held("d-pay", 5)],
        proficiencies: Some(proficiencies),
        version: Version(1),
        modified_at: None,
        unmapped: Default::default(),
    }
}

/// The tenant after `retire ACW --locale de-de --soft`: the definition inactive, assignments
/// kept. (The en-us variant does not exist; the catalog still manages it.)
fn live() -> Live {
    Live {
        definitions: vec![
            definition("d-pay", Kind::Skill, "Payments", true),
            definition("d-acw", Kind::Proficiency, "ACW_Sales", false),
        ],
        users: vec![
            user("u-1", vec![held("d-acw", 3)]),
            user("u-2", Vec::new()),
            user("u-3", vec![held("d-acw", 2)]),
        ],
        profile_ids: BTreeSet::from(["rp-1".to_string()]),
        sees_proficiencies: true,
        without_profiles: false,
    }
}

fn soft_retired() -> Retired {
    Retired {
        code: Code::from("ACW"),
        locale: locale("de-de"),
        definitions: vec![DefinitionId::from("d-acw")],
        mode: RetiredMode::Soft,
        run: 12,
    }
}

#[test]
fn without_the_retirement_the_same_tenant_is_reactivated_and_reassigned() {
    // The control: proves the other tests would notice the retirement being ignored.
    let plan = plan(&desired(), &live(), &PlanOptions::default()).unwrap();
    assert!(
        plan.definitions
            .iter()
            .any(|a| a.action == DefinitionActionKind::Reactivate && a.name == "ACW_Sales")
    );
    assert_eq!(plan.users.len(), 3, "{:#?}", plan.users);
}

#[test]
fn a_soft_retired_variant_is_not_reactivated_and_its_assignments_are_left_alone() {
    let plan = plan(
        &desired_with(vec![soft_retired()]),
        &live(),
        &PlanOptions::default(),
    )
    .unwrap();
    let acw_de: Vec<_> = plan
        .definitions
        .iter()
        .filter(|a| a.code.as_str() == "ACW" && a.locale == locale("de-de"))
        .collect();
    assert!(acw_de.is_empty(), "{acw_de:#?}");
    assert!(plan.users.is_empty(), "{:#?}", plan.users);
    let notes: Vec<String> = plan.warnings.iter().map(ToString::to_string).collect();
    assert!(
        notes.iter().any(|n| n
            .contains("proficiency ACW_Sales (de-de) was retired (soft) in run 12: not planned")
            && n.contains("catalog.csv:2")),
        "{notes:#?}"
    );
}

#[test]
fn a_retirement_is_recognised_by_definition_id_too() {
    // The code was renamed in the HRIS since; the tenant definition is what was retired.
    let retired = Retired {
        code: Code::from("OLD_ACW"),
        ..soft_retired()
    };
    let plan = plan(
        &desired_with(vec![retired]),
        &live(),
        &PlanOptions::default(),
    )
    .unwrap();
    assert!(plan.users.is_empty(), "{:#?}", plan.users);
}

#[test]
fn a_hard_retired_variant_is_not_recreated() {
    let desired = desired_with(vec![Retired {
        mode: RetiredMode::Hard,
        ..soft_retired()
    }]);
    let mut tenant = live();
    tenant.definitions.retain(|d| d.id.as_str() != "d-acw");
    for u in &mut tenant.users {
        u.proficiencies = Some(Vec::new());
    }
    let plan = plan(&desired, &tenant, &PlanOptions::default()).unwrap();
    assert!(
        plan.definitions
            .iter()
            .all(|a| !(a.code.as_str() == "ACW" && a.locale == locale("de-de"))),
        "{:#?}",
        plan.definitions
    );
    assert!(plan.users.is_empty(), "{:#?}", plan.users);
}

#[test]
fn re_planning_one_user_after_a_conflict_leaves_the_retired_variant_alone_too() {
    let desired = desired_with(vec![soft_retired()]);
    let tenant = live();
    let (resolution, _, _) = resolve(&desired, &tenant);
    let e1 = desired
        .agents
        .values()
        .find(|a| a.user_id.as_str() == "u-1")
        .unwrap();
    let wanted = &desired.assignments[&e1.employee_id];
    assert_eq!(
        resolution.plan_user(e1, wanted, &desired.catalog.kinds, &tenant.users[0]),
        None
    );
}

#[test]
fn definitions_of_a_variant_lists_the_resolved_one_first_then_its_duplicates() {
    let mut tenant = live();
    tenant.definitions = vec![
        definition("d-acw-old", Kind::Proficiency, "ACW_Sales", false),
        definition("d-acw", Kind::Proficiency, "ACW_Sales", true),
        definition("d-acw-dup", Kind::Proficiency, "ACW_Sales", true),
    ];
    let (resolution, _, _) = resolve(&desired(), &tenant);
    let ids = resolution.definitions_of(&Code::from("ACW"), &locale("de-de"));
    let ids: Vec<&str> = ids.iter().map(DefinitionId::as_str).collect();
    assert_eq!(ids, ["d-acw", "d-acw-dup", "d-acw-old"]);
    assert!(
        resolution
            .definitions_of(&Code::from("ACW"), &locale("en-us"))
            .is_empty(),
        "no en-us definition exists"
    );
}
