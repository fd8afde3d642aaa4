//! Properties of the planner over random small worlds: a catalog of up to five codes in one to
//! three locales, a tenant where catalog definitions may be missing, inactive, stale or
//! duplicated next to other integrations' definitions, and agents in random locales holding
//! random catalog and non-catalog assignments.
//!
//! - determinism: the order of the HRIS rows, of the tenant's users, and of its definitions
//!   (where the order carries no meaning) does not change the plan;
//! - convergence: applying the plan to the tenant and planning again gives an empty plan, and
//!   the tenant then holds exactly what the HRIS says;
//! - ownership: no plan adds, removes, changes or reorders an assignment to a definition
//!   outside the catalog, nor touches a user the HRIS does not list.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use proptest::prelude::*;
use serde_json::Value;
use skillsync_core::plan::{DefinitionActionKind, DefinitionRef, PlannedAssignment};
use skillsync_core::{
    Agent, Assignment, Catalog, CatalogEntry, Code, Definition, DefinitionId, Desired, EmployeeId,
    Kind, Level, Live, Locale, Plan, PlanOptions, Problem, Source, UserAssignments, UserId,
    Version, Wanted, plan, plan_json, problems_json, read_desired,
};

const LOCALES: [&str; 3] = ["en-us", "de-de", "fr-fr"];
const CODES: [(&str, &str); 5] = [
    ("BILL_DISPUTE", "Billing_Dispute_Resolution"),
    ("PAY_PROC", "Payment_Processing"),
    ("TECH_L3", "Technical_Support_Level_3"),
    ("RETENTION", "Customer_Retention"),
    ("PCI_DSS", "PCI_DSS_Certified_2024"),
];
/// Other integrations' definitions: `Ext_` names, plus catalog names in a locale the catalog
/// does not use (en-gb) or under the other kind, which look like ours and are not.
const EXT_NAMES: [&str; 3] = [
    "Ext_Speech_Analytics_QA",
    "Ext_WFM_Adherence",
    "Ext_LMS_Compliance_Course",
];
const EXT_LOCALES: [&str; 3] = ["en-us", "en-gb", "de-de"];
const PROFILES: [&str; 2] = [
    "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
    "b7e4c2a9-3d1f-4c8e-9a6b-5f0e2d7c1a34",
];

// ---------------------------------------------------------------------------------------------
// Recipes: what proptest generates and shrinks. `build` turns one into a world.

/// How the tenant holds one catalog variant.
#[derive(Debug, Clone)]
enum Held {
    Missing,
    /// One or more definitions with the variant's kind, name and locale, in tenant order, by
    /// their active flags (more than one: duplicates from blind retries).
    Present(Vec<bool>),
}

#[derive(Debug, Clone)]
struct VariantRecipe {
    held: Held,
    stale_description: bool,
    other_profile: bool,
}

#[derive(Debug, Clone)]
struct CodeRecipe {
    skill: bool,
    /// Bitmask over `LOCALES`, never 0.
    locales: u8,
    /// Each locale's variant has its own name (`Payment_Processing_DE`), not the same one.
    localized_names: bool,
}

#[derive(Debug, Clone)]
struct ExtRecipe {
    skill: bool,
    /// 0–2: an `Ext_` name; 3–7: a catalog code's name (of code `n - 3`).
    name: usize,
    locale: usize,
}

/// Entries of a live list: an index into the pool of definitions of the list's kind (the
/// tenant's, plus ids the tenant no longer lists), a level and an active flag.
type HeldList = Vec<(usize, u8, bool)>;

#[derive(Debug, Clone)]
struct UserRecipe {
    skills: HeldList,
    proficiencies: HeldList,
    version: u64,
}

#[derive(Debug, Clone)]
struct AgentRecipe {
    locale: usize,
    /// The tenant has the user (else: skipped with a warning).
    in_tenant: bool,
    /// (code index, level, active).
    wants: Vec<(usize, u8, bool)>,
    user: UserRecipe,
}

#[derive(Debug, Clone)]
struct Recipe {
    codes: Vec<CodeRecipe>,
    variants: Vec<VariantRecipe>,
    ext: Vec<ExtRecipe>,
    agents: Vec<AgentRecipe>,
    /// Tenant users the HRIS does not list.
    strangers: Vec<UserRecipe>,
    sees_proficiencies: bool,
    /// In the users dialect, whether the HRIS may still assign proficiencies (an error).
    proficiencies_in_users_dialect: bool,
    /// Drives the shuffles and the spelling of `active` in the CSV.
    seed: u64,
}

fn variant() -> impl Strategy<Value = VariantRecipe> {
    let held = prop_oneof![
        1 => Just(Held::Missing),
        4 => Just(Held::Present(vec![true])),
        1 => Just(Held::Present(vec![false])),
        2 => prop::collection::vec(any::<bool>(), 2..=3).prop_map(Held::Present),
    ];
    (held, prop::bool::weighted(0.2), prop::bool::weighted(0.1)).prop_map(
        |(held, stale_description, other_profile)| VariantRecipe {
            held,
            stale_description,
            other_profile,
        },
    )
}

fn held_list() -> impl Strategy<Value = HeldList> {
    prop::collection::vec((0usize..64, 1u8..=10, prop::bool::weighted(0.8)), 0..6)
}

fn user() -> impl Strategy<Value = UserRecipe> {
    (held_list(), held_list(), 1u64..20).prop_map(|(skills, proficiencies, version)| UserRecipe {
        skills,
        proficiencies,
        version,
    })
}

fn agent() -> impl Strategy<Value = AgentRecipe> {
    (
        0usize..3,
        prop::bool::weighted(0.9),
        prop::collection::vec((0usize..5, 1u8..=10, prop::bool::weighted(0.8)), 0..5),
        user(),
    )
        .prop_map(|(locale, in_tenant, wants, user)| AgentRecipe {
            locale,
            in_tenant,
            wants,
            user,
        })
}

fn recipe() -> impl Strategy<Value = Recipe> {
    (
        prop::collection::vec(
            (any::<bool>(), 1u8..8, prop::bool::weighted(0.3)).prop_map(
                |(skill, locales, localized_names)| CodeRecipe {
                    skill,
                    locales,
                    localized_names,
                },
            ),
            1..=5,
        ),
        prop::collection::vec(variant(), 15),
        prop::collection::vec(
            (any::<bool>(), 0usize..8, 0usize..3).prop_map(|(skill, name, locale)| ExtRecipe {
                skill,
                name,
                locale,
            }),
            0..5,
        ),
        prop::collection::vec(agent(), 1..=6),
        prop::collection::vec(user(), 0..3),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.3),
        any::<u64>(),
    )
        .prop_map(
            |(codes, variants, ext, agents, strangers, sees, prof_in_users, seed)| Recipe {
                codes,
                variants,
                ext,
                agents,
                strangers,
                sees_proficiencies: sees,
                proficiencies_in_users_dialect: prof_in_users,
                seed,
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Building a world from a recipe.

#[derive(Debug, Clone)]
struct World {
    desired: Desired,
    live: Live,
}

fn locale(tag: &str) -> Locale {
    Locale::parse(tag).expect("a valid locale")
}

fn level(n: u8) -> Level {
    Level::new(i64::from(n)).expect("1–10")
}

fn kind_of(skill: bool) -> Kind {
    if skill {
        Kind::Skill
    } else {
        Kind::Proficiency
    }
}

fn description(code: &str, tag: &str) -> String {
    format!("{code} handling for {tag} customers")
}

/// The name of a code's variant in the tenant.
fn variant_name(code: &CodeRecipe, name: &str, tag: &str) -> String {
    if code.localized_names && tag != "en-us" {
        format!("{name}_{}", tag[..2].to_uppercase())
    } else {
        name.to_string()
    }
}

fn build(r: &Recipe) -> World {
    // The catalog, in (code, locale) order; lines as a file in that order would have them.
    let mut catalog = Catalog::default();
    let mut line = 1;
    for (i, c) in r.codes.iter().enumerate() {
        let (code, name) = CODES[i];
        for (l, tag) in LOCALES.iter().enumerate() {
            if c.locales & (1 << l) == 0 {
                continue;
            }
            line += 1;
            catalog.insert(CatalogEntry {
                code: Code::from(code),
                kind: kind_of(c.skill),
                locale: locale(tag),
                name: variant_name(c, name, tag),
                description: description(code, tag),
                routing_profile_id: PROFILES[(i + l) % 2].to_string(),
                line,
            });
        }
    }

    // The tenant's definitions: catalog variants as the recipe says, then other integrations'.
    let mut definitions = Vec::new();
    let mut version = 1;
    for (i, c) in r.codes.iter().enumerate() {
        let (code, name) = CODES[i];
        for (l, tag) in LOCALES.iter().enumerate() {
            if c.locales & (1 << l) == 0 {
                continue;
            }
            let v = &r.variants[i * 3 + l];
            let Held::Present(flags) = &v.held else {
                continue;
            };
            for (n, active) in flags.iter().enumerate() {
                version += 1;
                definitions.push(Definition {
                    id: DefinitionId(format!("d-{}-{tag}-{n}", code.to_lowercase())),
                    kind: kind_of(c.skill),
                    name: variant_name(c, name, tag),
                    locale: locale(tag),
                    active: *active,
                    description: if v.stale_description {
                        "old wording".to_string()
                    } else {
                        description(code, tag)
                    },
                    routing_profile_id: PROFILES[(i + l + usize::from(v.other_profile)) % 2]
                        .to_string(),
                    version: Version(version % 7 + 1),
                });
            }
        }
    }
    for (n, e) in r.ext.iter().enumerate() {
        let name = match e.name {
            0..=2 => EXT_NAMES[e.name].to_string(),
            k => CODES[k - 3].1.to_string(),
        };
        definitions.push(Definition {
            id: DefinitionId(format!("ext-{n}")),
            kind: kind_of(e.skill),
            name,
            locale: locale(EXT_LOCALES[e.locale]),
            active: true,
            description: "managed by another integration".to_string(),
            routing_profile_id: PROFILES[0].to_string(),
            version: Version(1),
        });
    }

    // Pools a live list draws from: every definition of the kind, and two ids that no longer
    // exist.
    let pool = |kind: Kind| -> Vec<DefinitionId> {
        let mut ids: Vec<DefinitionId> = definitions
            .iter()
            .filter(|d| d.kind == kind)
            .map(|d| d.id.clone())
            .collect();
        let prefix = match kind {
            Kind::Skill => "gone-skill",
            Kind::Proficiency => "gone-proficiency",
        };
        ids.push(DefinitionId(format!("{prefix}-1")));
        ids.push(DefinitionId(format!("{prefix}-2")));
        ids
    };
    let skill_pool = pool(Kind::Skill);
    let proficiency_pool = pool(Kind::Proficiency);
    let list = |held: &HeldList, pool: &[DefinitionId]| -> Vec<Assignment> {
        let mut seen = HashSet::new();
        held.iter()
            .filter_map(|&(k, n, active)| {
                let id = &pool[k % pool.len()];
                seen.insert(id.clone()).then(|| Assignment {
                    definition: id.clone(),
                    level: level(n),
                    active,
                })
            })
            .collect()
    };
    let live_user = |id: UserId, u: &UserRecipe| UserAssignments {
        user_id: id,
        skills: list(&u.skills, &skill_pool),
        proficiencies: r
            .sees_proficiencies
            .then(|| list(&u.proficiencies, &proficiency_pool)),
        version: Version(u.version),
        modified_at: None,
        unmapped: Default::default(),
    };

    // Agents and their wants.
    let catalog_locales: Vec<Locale> = catalog.locales().into_iter().cloned().collect();
    let mut agents = BTreeMap::new();
    let mut assignments = BTreeMap::new();
    let mut users = Vec::new();
    let mut wanted_line = 1;
    for (n, a) in r.agents.iter().enumerate() {
        let employee = EmployeeId(format!("E{:04}", 1001 + n));
        let user_id = UserId(format!("u-{}", 5001 + n));
        let agent_locale = catalog_locales[a.locale % catalog_locales.len()].clone();
        agents.insert(
            employee.clone(),
            Agent {
                employee_id: employee.clone(),
                user_id: user_id.clone(),
                locale: agent_locale.clone(),
                line: n as u64 + 2,
            },
        );
        let mut wants = BTreeMap::new();
        for &(c, n, active) in &a.wants {
            let Some(code) = r.codes.get(c).map(|_| Code::from(CODES[c].0)) else {
                continue;
            };
            if catalog.entry(&code, &agent_locale).is_none() || wants.contains_key(&code) {
                continue;
            }
            let proficiency = catalog.kind_of(&code) == Some(Kind::Proficiency);
            if proficiency && !r.sees_proficiencies && !r.proficiencies_in_users_dialect {
                continue;
            }
            wanted_line += 1;
            wants.insert(
                code,
                Wanted {
                    level: level(n),
                    active,
                    line: wanted_line,
                },
            );
        }
        if !wants.is_empty() {
            assignments.insert(employee, wants);
        }
        if a.in_tenant {
            users.push(live_user(user_id, &a.user));
        }
    }
    // The assignments file must have a row: give the first agent one if nobody has any.
    if assignments.is_empty() {
        let (employee, agent) = agents.iter().next().expect("an agent");
        // A skill where there is one in the agent's locale; else a proficiency (which the
        // users dialect refuses, as it should).
        let code = catalog
            .entries
            .iter()
            .filter(|((_, l), _)| *l == agent.locale)
            .min_by_key(|(_, e)| e.kind)
            .map(|((c, _), _)| c.clone())
            .expect("the agent's locale is a catalog locale");
        assignments.insert(
            employee.clone(),
            BTreeMap::from([(
                code,
                Wanted {
                    level: level(5),
                    active: true,
                    line: 2,
                },
            )]),
        );
    }
    for (n, u) in r.strangers.iter().enumerate() {
        users.push(live_user(UserId(format!("u-x{}", 9001 + n)), u));
    }

    World {
        desired: Desired {
            files: Default::default(),
            catalog,
            agents,
            assignments,
            retired: Vec::new(),
        },
        live: Live {
            definitions,
            users,
            profile_ids: PROFILES.iter().map(|p| p.to_string()).collect(),
            sees_proficiencies: r.sees_proficiencies,
            without_profiles: false,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Shuffles and CSV.

/// SplitMix64: enough randomness for shuffles, from the recipe's seed.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

fn csv_text(header: &[&str], rows: &[Vec<String>]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header).expect("write");
    for row in rows {
        writer.write_record(row).expect("write");
    }
    writer.into_inner().expect("flush")
}

/// The desired state as the three HRIS files, every file's rows in a shuffled order, and the
/// `active` flag spelled in any of the ways the reader accepts.
fn hris_files(desired: &Desired, mix: &mut Mix) -> [Vec<u8>; 3] {
    let mut catalog: Vec<Vec<String>> = desired
        .catalog
        .entries
        .values()
        .map(|e| {
            vec![
                e.code.to_string(),
                e.kind.to_string(),
                e.locale.to_string(),
                e.name.clone(),
                e.description.clone(),
                e.routing_profile_id.clone(),
            ]
        })
        .collect();
    let mut agents: Vec<Vec<String>> = desired
        .agents
        .values()
        .map(|a| {
            vec![
                a.employee_id.to_string(),
                a.user_id.to_string(),
                a.locale.to_string(),
            ]
        })
        .collect();
    let mut assignments = Vec::new();
    for (employee, wants) in &desired.assignments {
        for (code, want) in wants {
            let spellings: &[&str] = if want.active {
                &["true", "", "yes", "1", "TRUE"]
            } else {
                &["false", "no", "0", "False"]
            };
            assignments.push(vec![
                employee.to_string(),
                code.to_string(),
                want.level.to_string(),
                spellings[mix.below(spellings.len())].to_string(),
            ]);
        }
    }
    mix.shuffle(&mut catalog);
    mix.shuffle(&mut agents);
    mix.shuffle(&mut assignments);
    [
        csv_text(
            &[
                "code",
                "kind",
                "locale",
                "name",
                "description",
                "routing_profile_id",
            ],
            &catalog,
        ),
        csv_text(&["employee_id", "user_id", "locale"], &agents),
        csv_text(&["employee_id", "code", "level", "active"], &assignments),
    ]
}

fn read_back(files: [Vec<u8>; 3]) -> Desired {
    let [catalog, agents, assignments] = files;
    let source = |name: &str, bytes: Vec<u8>| Source {
        name: name.to_string(),
        reader: std::io::Cursor::new(bytes),
    };
    match read_desired(
        source("catalog.csv", catalog),
        source("agents.csv", agents),
        source("assignments.csv", assignments),
    ) {
        Ok(loaded) => {
            assert!(
                loaded.warnings.is_empty(),
                "warnings: {:?}",
                loaded.warnings
            );
            loaded.desired
        }
        Err(problems) => panic!("the generated files are invalid: {problems:#?}"),
    }
}

/// A desired state without its line numbers (which follow the row order).
fn without_lines(d: &Desired) -> Desired {
    let mut d = d.clone();
    for entry in d.catalog.entries.values_mut() {
        entry.line = 0;
    }
    for agent in d.agents.values_mut() {
        agent.line = 0;
    }
    for wants in d.assignments.values_mut() {
        for want in wants.values_mut() {
            want.line = 0;
        }
    }
    d
}

/// The tenant in another order that means the same: users in any order; definitions in any
/// order that keeps the relative order of definitions sharing kind, name and locale (the first
/// active one of those is the canonical one).
fn shuffled_live(live: &Live, mix: &mut Mix) -> Live {
    let mut live = live.clone();
    mix.shuffle(&mut live.users);
    let mut groups: BTreeMap<(Kind, String, Locale), std::collections::VecDeque<Definition>> =
        BTreeMap::new();
    let mut order = Vec::new();
    for d in live.definitions.drain(..) {
        let key = (d.kind, d.name.clone(), d.locale.clone());
        order.push(key.clone());
        groups.entry(key).or_default().push_back(d);
    }
    mix.shuffle(&mut order);
    live.definitions = order
        .into_iter()
        .map(|key| {
            groups
                .get_mut(&key)
                .and_then(|g| g.pop_front())
                .expect("one left")
        })
        .collect();
    live
}

/// The plan's JSON, or the problems' JSON, without line numbers (they follow the row order)
/// and with warnings and problems sorted (their order follows the lines).
fn outcome_json(outcome: &Result<Plan, Vec<Problem>>) -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("line");
                map.remove("catalogLine");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value = match outcome {
        Ok(plan) => plan_json(plan),
        Err(problems) => problems_json(problems),
    };
    strip(&mut value);
    for key in ["warnings", "problems"] {
        if let Some(Value::Array(items)) = value.get_mut(key) {
            items.sort_by_key(|v| v.to_string());
        }
    }
    value
}

// ---------------------------------------------------------------------------------------------
// Applying a plan to the model tenant.

/// Applies a plan as the engine would: definitions first (creates get fresh ids), then each
/// changed user's lists replaced by the plan's `after`, versions bumped.
fn apply(plan: &Plan, live: &Live) -> Live {
    let mut live = live.clone();
    let mut created: HashMap<(Code, Locale), DefinitionId> = HashMap::new();
    for (n, action) in plan.definitions.iter().enumerate() {
        match action.action {
            DefinitionActionKind::Create => {
                assert!(action.existing.is_none());
                let id = DefinitionId(format!("created-{n}"));
                live.definitions.push(Definition {
                    id: id.clone(),
                    kind: action.kind,
                    name: action.name.clone(),
                    locale: action.locale.clone(),
                    active: true,
                    description: action.description.clone(),
                    routing_profile_id: action.routing_profile_id.clone(),
                    version: Version(1),
                });
                created.insert((action.code.clone(), action.locale.clone()), id);
            }
            DefinitionActionKind::Reactivate | DefinitionActionKind::Update => {
                let existing = action.existing.as_ref().expect("an existing definition");
                let d = live
                    .definitions
                    .iter_mut()
                    .find(|d| d.id == existing.id)
                    .expect("the definition exists");
                assert_eq!(*d, *existing, "the plan read the definition as it is");
                d.active = true;
                d.description = action.description.clone();
                d.routing_profile_id = action.routing_profile_id.clone();
                d.version = Version(d.version.0 + 1);
            }
        }
    }
    let resolve = |list: &[PlannedAssignment]| -> Vec<Assignment> {
        list.iter()
            .map(|p| Assignment {
                definition: match &p.definition {
                    DefinitionRef::Existing(id) => id.clone(),
                    DefinitionRef::New { code, locale } => created
                        .get(&(code.clone(), locale.clone()))
                        .cloned()
                        .unwrap_or_else(|| panic!("{code} ({locale}) is used but not created")),
                },
                level: p.level,
                active: p.active,
            })
            .collect()
    };
    for change in &plan.users {
        let user = live
            .users
            .iter_mut()
            .find(|u| u.user_id == change.user_id)
            .expect("the plan changes users that exist");
        assert_eq!(
            user.version, change.version,
            "the plan carries the version read"
        );
        if let Some(skills) = &change.skills {
            user.skills = resolve(&skills.after);
        }
        if let Some(proficiencies) = &change.proficiencies {
            let list = user
                .proficiencies
                .as_mut()
                .expect("no proficiency write where they cannot be seen");
            *list = resolve(&proficiencies.after);
        }
        user.version = Version(user.version.0 + 1);
    }
    live
}

/// Tenant definitions the catalog owns: same kind, name and locale as a catalog variant. The
/// code of each.
fn owned(desired: &Desired, live: &Live) -> HashMap<DefinitionId, Code> {
    let variants: HashMap<(Kind, &str, &Locale), &Code> = desired
        .catalog
        .entries
        .values()
        .map(|e| ((e.kind, e.name.as_str(), &e.locale), &e.code))
        .collect();
    live.definitions
        .iter()
        .filter_map(|d| {
            variants
                .get(&(d.kind, d.name.as_str(), &d.locale))
                .map(|code| (d.id.clone(), (*code).clone()))
        })
        .collect()
}

/// The planner is the one under test: a plan that is refused only because the users dialect
/// cannot take proficiencies is expected, and nothing else may refuse a generated world.
fn expect_plan(world: &World) -> Option<Plan> {
    match plan(&world.desired, &world.live, &PlanOptions::default()) {
        Ok(plan) => Some(plan),
        Err(problems) => {
            let errors: Vec<&Problem> = problems.iter().filter(|p| p.is_error()).collect();
            assert!(
                !world.live.sees_proficiencies
                    && errors.len() == 1
                    && errors[0].message.contains("users dialect"),
                "unexpected problems: {problems:#?}"
            );
            None
        }
    }
}

/// `cases` per property, unless `PROPTEST_CASES` asks for another number (for a long hunt).
fn config(cases: u32) -> ProptestConfig {
    let defaults = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            defaults.cases
        } else {
            cases
        },
        // A failure prints its minimal input; no regression files beside the tests.
        failure_persistence: None,
        ..defaults
    }
}

proptest! {
    #![proptest_config(config(200))]

    /// Row order in the HRIS files, user order in the tenant, and the order of unrelated
    /// definitions do not change the plan (nor the problems, when it is refused).
    #[test]
    fn the_plan_does_not_depend_on_input_order(recipe in recipe()) {
        let world = build(&recipe);
        let baseline = outcome_json(&plan(&world.desired, &world.live, &PlanOptions::default()));
        let mut mix = Mix(recipe.seed);
        for _ in 0..3 {
            let desired = read_back(hris_files(&world.desired, &mut mix));
            prop_assert_eq!(without_lines(&desired), without_lines(&world.desired));
            let live = shuffled_live(&world.live, &mut mix);
            let again = outcome_json(&plan(&desired, &live, &PlanOptions::default()));
            prop_assert_eq!(&again, &baseline);
        }
    }

    /// Applying the plan, then planning again, finds nothing to do; and every agent then holds
    /// exactly its desired assignments, each to the one canonical definition of its code in the
    /// agent's locale.
    #[test]
    fn applying_the_plan_converges(recipe in recipe()) {
        let world = build(&recipe);
        let Some(first) = expect_plan(&world) else { return Ok(()); };
        let live = apply(&first, &world.live);
        let second = plan(&world.desired, &live, &PlanOptions::default())
            .map_err(|p| TestCaseError::fail(format!("refused after applying: {p:#?}")))?;
        prop_assert!(
            second.is_empty(),
            "a second plan is not empty: {}",
            serde_json::to_string_pretty(&plan_json(&second)).unwrap()
        );

        // The tenant now matches the HRIS, judged without the planner.
        let owners = owned(&world.desired, &live);
        for (employee, agent) in &world.desired.agents {
            let Some(user) = live.users.iter().find(|u| u.user_id == agent.user_id) else {
                continue;
            };
            let no_wants = BTreeMap::new();
            let wants = world.desired.assignments.get(employee).unwrap_or(&no_wants);
            for kind in Kind::ALL {
                let list = match kind {
                    Kind::Skill => &user.skills,
                    Kind::Proficiency => match &user.proficiencies {
                        Some(list) => list,
                        None => continue,
                    },
                };
                let mut held: Vec<(DefinitionId, Level, bool)> = list
                    .iter()
                    .filter(|a| owners.contains_key(&a.definition))
                    .map(|a| (a.definition.clone(), a.level, a.active))
                    .collect();
                held.sort();
                let mut expected: Vec<(DefinitionId, Level, bool)> = wants
                    .iter()
                    .filter(|(code, _)| world.desired.catalog.kind_of(code) == Some(kind))
                    .map(|(code, want)| {
                        let entry = world.desired.catalog.entry(code, &agent.locale).unwrap();
                        let same: Vec<&Definition> = live
                            .definitions
                            .iter()
                            .filter(|d| {
                                (d.kind, d.name.as_str(), &d.locale)
                                    == (entry.kind, entry.name.as_str(), &entry.locale)
                            })
                            .collect();
                        let canonical = same
                            .iter()
                            .find(|d| d.active)
                            .or(same.first())
                            .expect("the definition exists after applying");
                        prop_assert!(canonical.active, "{} is inactive", canonical.id);
                        Ok((canonical.id.clone(), want.level, want.active))
                    })
                    .collect::<Result<_, TestCaseError>>()?;
                expected.sort();
                prop_assert_eq!(
                    held,
                    expected,
                    "{} {} ({}) holds other {} assignments than the HRIS says",
                    employee,
                    agent.user_id,
                    agent.locale,
                    kind
                );
            }
        }
    }

    /// Assignments to definitions outside the catalog are never added, removed, changed or
    /// moved relative to each other; no change names such a definition; entries that stay keep
    /// their order; users the HRIS does not list are not touched.
    #[test]
    fn assignments_outside_the_catalog_are_never_touched(recipe in recipe()) {
        let world = build(&recipe);
        let Some(plan) = expect_plan(&world) else { return Ok(()); };
        let after = apply(&plan, &world.live);
        // Over the tenant after applying: definitions the plan created are the catalog's too.
        let owners = owned(&world.desired, &after);
        let managed: HashSet<&UserId> =
            world.desired.agents.values().map(|a| &a.user_id).collect();

        for change in plan.users.iter().flat_map(|u| u.changes()) {
            if let DefinitionRef::Existing(id) = &change.definition {
                prop_assert!(
                    owners.contains_key(id),
                    "a change names {}, which is not the catalog's",
                    id
                );
            }
        }
        for user in &plan.users {
            prop_assert!(managed.contains(&user.user_id), "{} is not an agent", user.user_id);
        }

        for (before, now) in world.live.users.iter().zip(&after.users) {
            prop_assert_eq!(&before.user_id, &now.user_id);
            if !managed.contains(&before.user_id) {
                prop_assert_eq!(before, now);
                continue;
            }
            prop_assert_eq!(before.proficiencies.is_some(), now.proficiencies.is_some());
            let mut lists = vec![(&before.skills, &now.skills)];
            if let (Some(old), Some(new)) = (&before.proficiencies, &now.proficiencies) {
                lists.push((old, new));
            }
            for (old, new) in lists {
                let foreign = |list: &[Assignment]| -> Vec<Assignment> {
                    list.iter()
                        .filter(|a| !owners.contains_key(&a.definition))
                        .cloned()
                        .collect()
                };
                prop_assert_eq!(
                    foreign(old),
                    foreign(new),
                    "{}: assignments outside the catalog changed",
                    before.user_id
                );
                // Entries that stay keep their relative order.
                let old_ids: HashSet<&DefinitionId> = old.iter().map(|a| &a.definition).collect();
                let new_ids: HashSet<&DefinitionId> = new.iter().map(|a| &a.definition).collect();
                let kept_old: Vec<&DefinitionId> = old
                    .iter()
                    .map(|a| &a.definition)
                    .filter(|id| new_ids.contains(id))
                    .collect();
                let kept_new: Vec<&DefinitionId> = new
                    .iter()
                    .map(|a| &a.definition)
                    .filter(|id| old_ids.contains(id))
                    .collect();
                prop_assert_eq!(kept_old, kept_new, "{}: entries reordered", before.user_id);
            }
        }
    }
}

/// The generator makes the worlds the properties need: most plans change something, most
/// changed users also hold other integrations' assignments, and every kind of definition
/// action and reason for a change turns up.
#[test]
fn the_generator_covers_the_interesting_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use skillsync_core::plan::Why;

    let mut runner = TestRunner::deterministic();
    let strategy = recipe();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let (mut plans, mut refused, mut shared_changed) = (0, 0, 0);
    for _ in 0..300 {
        let recipe = strategy.new_tree(&mut runner).unwrap().current();
        let world = build(&recipe);
        let Some(plan) = expect_plan(&world) else {
            refused += 1;
            continue;
        };
        plans += 1;
        let owners = owned(&world.desired, &world.live);
        for action in &plan.definitions {
            seen.insert(format!("{:?}", action.action));
        }
        for user in &plan.users {
            let live = world
                .live
                .users
                .iter()
                .find(|u| u.user_id == user.user_id)
                .unwrap();
            if live
                .skills
                .iter()
                .chain(live.proficiencies.iter().flatten())
                .any(|a| !owners.contains_key(&a.definition))
            {
                shared_changed += 1;
            }
            for change in user.changes() {
                seen.insert(format!("{:?}", change.why));
                if change.is_add() {
                    seen.insert("add".into());
                }
                if change.changes_level() {
                    seen.insert("level".into());
                }
            }
            if user.left_without_skills {
                seen.insert("left without skills".into());
            }
        }
        if !plan.warnings.is_empty() {
            seen.insert("warnings".into());
        }
    }
    for what in [
        "Create",
        "Reactivate",
        "Update",
        &format!("{:?}", Why::Desired),
        &format!("{:?}", Why::NotDesired),
        &format!("{:?}", Why::WrongLocale),
        &format!("{:?}", Why::Duplicate),
        "add",
        "level",
        "left without skills",
        "warnings",
    ] {
        assert!(
            seen.contains(what),
            "no generated plan has {what}: {seen:?}"
        );
    }
    assert!(plans > 200, "{plans} plans, {refused} refused");
    assert!(refused > 0, "the users-dialect refusal never turns up");
    assert!(
        shared_changed > 100,
        "only {shared_changed} changed users hold foreign assignments"
    );
}
