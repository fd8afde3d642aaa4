//! `docs/plan-json.md` documents every field `plan_json` and `problems_json` emit: a field
//! added to the plan without a line in the document fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;
use skillsync_core::{
    Agent, Assignment, Catalog, CatalogEntry, Code, Definition, DefinitionId, Desired, EmployeeId,
    Kind, Level, Live, Locale, PlanOptions, Problem, Style, UserAssignments, UserId, Version,
    Wanted, plan, plan_human, plan_json, problems_json,
};

fn doc() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/plan-json.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn locale(tag: &str) -> Locale {
    Locale::parse(tag).unwrap()
}

fn level(n: i64) -> Level {
    Level::new(n).unwrap()
}

/// A plan with every kind of entry: a create, a reactivate, a duplicate, a wrong locale, an
/// add, a change, a removal, a skipped agent (warning).
fn sample_plan() -> skillsync_core::Plan {
    let mut catalog = Catalog::default();
    for (code, kind, tag, name, line) in [
        ("PAY", Kind::Skill, "de-de", "Payments", 2),
        ("PAY", Kind::Skill, "en-us", "Payments", 3),
        ("BIL", Kind::Skill, "en-us", "Billing", 4),
        ("QUA", Kind::Proficiency, "en-us", "Quality", 5),
    ] {
        catalog.insert(CatalogEntry {
            code: Code::from(code),
            kind,
            locale: locale(tag),
            name: name.to_string(),
            description: String::new(),
            routing_profile_id: "rp-1".to_string(),
            line,
        });
    }
    let mut agents = BTreeMap::new();
    for (e, u, tag) in [
        ("E1", "u-1", "de-de"),
        ("E2", "u-2", "en-us"),
        ("E3", "u-3", "en-us"),
    ] {
        agents.insert(
            EmployeeId::from(e),
            Agent {
                employee_id: EmployeeId::from(e),
                user_id: UserId::from(u),
                locale: locale(tag),
                line: 2,
            },
        );
    }
    let want = |n, active| Wanted {
        level: level(n),
        active,
        line: 2,
    };
    let assignments = BTreeMap::from([
        (
            EmployeeId::from("E1"),
            BTreeMap::from([(Code::from("PAY"), want(5, true))]),
        ),
        (
            EmployeeId::from("E2"),
            BTreeMap::from([
                (Code::from("PAY"), want(3, true)),
                (Code::from("BIL"), want(7, true)),
                (Code::from("QUA"), want(2, false)),
            ]),
        ),
    ]);
    let definition = |id: &str, kind, name: &str, tag: &str, active| Definition {
        id: DefinitionId::from(id),
        kind,
        name: name.to_string(),
        locale: locale(tag),
        active,
        description: String::new(),
        routing_profile_id: "rp-1".to_string(),
        version: Version(1),
    };
    let held = |id: &str, n| Assignment {
        definition: DefinitionId::from(id),
        level: level(n),
        active: true,
    };
    let live = Live {
        definitions: vec![
            definition("d-pay-en", Kind::Skill, "Payments", "en-us", true),
            definition("d-pay-en-2", Kind::Skill, "Payments", "en-us", true),
            definition("d-bil-en", Kind::Skill, "Billing", "en-us", false),
            definition("d-qua-en", Kind::Proficiency, "Quality", "en-us", true),
        ],
        users: vec![
            UserAssignments {
                user_id: UserId::from("u-1"),
                skills: vec![held("d-pay-en", 4)],
                proficiencies: Some(Vec::new()),
                version: Version(1),
                modified_at: None,
                unmapped: Default::default(),
            },
            UserAssignments {
                user_id: UserId::from("u-2"),
                skills: vec![held("d-pay-en-2", 3), held("d-bil-en", 1)],
                proficiencies: Some(Vec::new()),
                version: Version(2),
                modified_at: None,
                unmapped: Default::default(),
            },
        ],
        profile_ids: BTreeSet::from(["rp-1".to_string()]),
        sees_proficiencies: true,
        without_profiles: false,
    };
    let desired = Desired {
        files: Default::default(),
        catalog,
        agents,
        assignments,
        retired: Vec::new(),
    };
    plan(&desired, &live, &PlanOptions::default()).expect("the sample plans")
}

/// Every object key anywhere in `value`.
fn keys(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                out.insert(k.clone());
                keys(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

fn undocumented<'a>(doc: &str, names: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    names
        .into_iter()
        .filter(|name| !doc.contains(&format!("`{name}`")))
        .cloned()
        .collect()
}

#[test]
fn every_top_level_and_totals_field_of_plan_json_is_documented() {
    let doc = doc();
    let value = plan_json(&sample_plan());
    let top: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    assert!(top.contains(&"byDefinition".to_string()));
    let totals: Vec<String> = value["totals"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(totals.len() >= 15, "{totals:?}");
    let missing = undocumented(&doc, top.iter().chain(totals.iter()));
    assert!(
        missing.is_empty(),
        "docs/plan-json.md does not document {missing:?}"
    );
}

#[test]
fn every_nested_field_of_plan_json_is_documented() {
    let doc = doc();
    let value = plan_json(&sample_plan());
    assert!(!value["users"].as_array().unwrap().is_empty());
    assert!(!value["byDefinition"].as_array().unwrap().is_empty());
    let mut names = BTreeSet::new();
    keys(&value, &mut names);
    let missing = undocumented(&doc, &names);
    assert!(
        missing.is_empty(),
        "docs/plan-json.md does not document {missing:?}"
    );
}

#[test]
fn every_field_of_problems_json_is_documented() {
    let doc = doc();
    let problems = [Problem::error("hris/agents.csv", "bad")
        .at_line(2)
        .at_field("locale", 3)
        .hint("fix it")];
    let mut names = BTreeSet::new();
    keys(&problems_json(&problems), &mut names);
    let missing = undocumented(&doc, &names);
    assert!(
        missing.is_empty(),
        "docs/plan-json.md does not document {missing:?}"
    );
}

/// The fenced blocks of `lang` in the document, in order.
fn blocks(doc: &str, lang: &str) -> Vec<String> {
    let fence = format!("```{lang}\n");
    doc.split(&fence)
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap().to_string())
        .collect()
}

/// The plan of the document's example: E0001 (de-de) holds the en-us variant of PAY and
/// someone else's skill; the de-de variant does not exist yet.
fn example_plan() -> skillsync_core::Plan {
    let mut catalog = Catalog::default();
    for (tag, line) in [("de-de", 2), ("en-us", 3)] {
        catalog.insert(CatalogEntry {
            code: Code::from("PAY"),
            kind: Kind::Skill,
            locale: locale(tag),
            name: "Payments".to_string(),
            description: "Card and invoice payments".to_string(),
            routing_profile_id: "rp-1".to_string(),
            line,
        });
    }
    let agent = Agent {
        employee_id: EmployeeId::from("E0001"),
        user_id: UserId::from("u-1"),
        locale: locale("de-de"),
        line: 2,
    };
    let desired = Desired {
        files: Default::default(),
        catalog,
        agents: BTreeMap::from([(agent.employee_id.clone(), agent)]),
        assignments: BTreeMap::from([(
            EmployeeId::from("E0001"),
            BTreeMap::from([(
                Code::from("PAY"),
                Wanted {
                    level: level(5),
                    active: true,
                    line: 2,
                },
            )]),
        )]),
        retired: Vec::new(),
    };
    let definition = |id: &str, name: &str| Definition {
        id: DefinitionId::from(id),
        kind: Kind::Skill,
        name: name.to_string(),
        locale: locale("en-us"),
        active: true,
        description: "Card and invoice payments".to_string(),
        routing_profile_id: "rp-1".to_string(),
        version: Version(1),
    };
    let held = |id: &str, n| Assignment {
        definition: DefinitionId::from(id),
        level: level(n),
        active: true,
    };
    let live = Live {
        definitions: vec![
            definition("d-pay-en", "Payments"),
            definition("d-other", "Someone_Elses"),
        ],
        users: vec![UserAssignments {
            user_id: UserId::from("u-1"),
            skills: vec![held("d-pay-en", 4), held("d-other", 9)],
            proficiencies: Some(Vec::new()),
            version: Version(7),
            modified_at: None,
            unmapped: Default::default(),
        }],
        profile_ids: BTreeSet::from(["rp-1".to_string()]),
        sees_proficiencies: true,
        without_profiles: false,
    };
    plan(&desired, &live, &PlanOptions::default()).expect("the example plans")
}

#[test]
fn the_documents_examples_are_what_the_code_prints() {
    let doc = doc();
    let json = blocks(&doc, "json");
    assert_eq!(json.len(), 2, "a plan example and a problems example");
    let plan = example_plan();
    let documented: Value = serde_json::from_str(&json[0]).expect("the plan example is JSON");
    assert_eq!(documented, plan_json(&plan));

    let text = blocks(&doc, "text");
    assert_eq!(text.len(), 1);
    assert_eq!(text[0], plan_human(&plan, Style { color: false }));

    let documented: Value = serde_json::from_str(&json[1]).expect("the problems example is JSON");
    let problem = Problem::error(
        "hris/agents.csv",
        "locale `de-DE` must be lowercase (write `de-de`)",
    )
    .at_line(12)
    .at_field("locale", 3)
    .hint("locales are compared exactly; use lowercase tags");
    assert_eq!(documented, problems_json(&[problem]));
}
