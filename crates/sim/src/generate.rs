//! Generated tenants: deterministic for a seed, so a benchmark or a demo can name its scenario
//! in one line and get the same tenant every time.

use jiff::Timestamp;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::{Assignment, Definition, Profile, Queue, Strategy, TenantDoc, User};
use crate::other_writer::OWNED_PREFIX;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Users (agents).
    pub agents: usize,
    /// Skill names; each exists once per locale.
    pub skills: usize,
    /// Proficiency names; each exists once per locale.
    pub proficiencies: usize,
    /// Locales, lowercase BCP-47.
    pub locales: Vec<String>,
    /// Routing profiles.
    pub profiles: usize,
    /// Seed of the generator.
    pub seed: u64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            agents: 100,
            skills: 10,
            proficiencies: 5,
            locales: vec!["en-us".into(), "de-de".into()],
            profiles: 3,
            seed: 1,
        }
    }
}

/// What [`generate_with`] adds to a generated tenant on request. Each is off by default, so
/// every tenant generated before it existed stays the same, figure for figure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extras {
    /// Routing strategies (`Strategy_1`, …), each referencing one or two of the generated
    /// (non-`Ext_`) proficiency definitions; drawn from their own random stream, so the rest
    /// of the tenant is exactly what [`generate`] makes for the same options.
    pub strategies: usize,
}

const SKILL_TOPICS: &[&str] = &[
    "Billing_Dispute_Resolution",
    "Payment_Processing",
    "Technical_Support",
    "Returns_And_Refunds",
    "Account_Security",
    "Sales_Upgrades",
    "Retention_Offers",
    "Shipping_Inquiries",
    "Fraud_Review",
    "Collections",
    "Warranty_Claims",
    "Onboarding",
    "Loyalty_Program",
    "Outage_Reports",
    "Enterprise_Accounts",
    "Claims_Intake",
];

const PROFICIENCY_TOPICS: &[&str] = &[
    "PCI_DSS_Certified",
    "GDPR_Trained",
    "Product_Expert",
    "Escalation_Handler",
    "Chat_Certified",
    "Email_Certified",
    "Mentor",
    "Quality_Coach",
    "Accessibility_Trained",
    "Compliance_Refresher",
];

const EXT_SKILL_TOPICS: &[&str] = &[
    "Ext_Speech_Analytics_Flag",
    "Ext_WFM_Overflow",
    "Ext_QA_Review",
];
const EXT_PROFICIENCY_TOPICS: &[&str] = &["Ext_Compliance_Score", "Ext_Coaching_Due"];

const FIRST_NAMES: &[&str] = &[
    "Ada", "Ben", "Chloé", "Dmitri", "Elif", "Farah", "Gustav", "Hana", "Ines", "Jonas", "Kofi",
    "Lena", "Mateo", "Nora", "Oskar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Viktor",
    "Wen", "Yara",
];
const LAST_NAMES: &[&str] = &[
    "Andersen", "Becker", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Hoffmann", "Ivanova",
    "Jensen", "Kowalski", "Lambert", "Müller", "Nakamura", "Okafor", "Petrov", "Rossi", "Schmidt",
    "Tanaka", "Weber",
];

/// The name of the `i`th generated skill (stable: HRIS sample files refer to these names).
pub fn skill_name(i: usize) -> String {
    topic_name(SKILL_TOPICS, i)
}

/// The name of the `i`th generated proficiency.
pub fn proficiency_name(i: usize) -> String {
    topic_name(PROFICIENCY_TOPICS, i)
}

fn topic_name(topics: &[&str], i: usize) -> String {
    let base = topics[i % topics.len()];
    match i / topics.len() {
        0 => base.to_string(),
        round => format!("{base}_{}", round + 1),
    }
}

fn uuid(rng: &mut ChaCha8Rng) -> String {
    uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string()
}

/// Builds a tenant from options; the same options always give the same tenant.
pub fn generate(options: &GenerateOptions) -> TenantDoc {
    generate_with(options, &Extras::default())
}

/// [`generate`] plus the extras asked for.
pub fn generate_with(options: &GenerateOptions, extras: &Extras) -> TenantDoc {
    let mut doc = base(options);
    doc.strategies = strategies(&doc, options.seed, extras.strategies);
    doc
}

/// `count` strategies over the generated proficiencies, from a stream of their own.
fn strategies(doc: &TenantDoc, seed: u64, count: usize) -> Vec<Strategy> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5354_5241_5445_4759);
    let pool: Vec<&Definition> = doc
        .proficiencies
        .iter()
        .filter(|d| !d.name.starts_with(OWNED_PREFIX))
        .collect();
    if pool.is_empty() {
        return Vec::new();
    }
    (0..count)
        .map(|i| {
            let take = rng.random_range(1..=2.min(pool.len()));
            Strategy {
                id: uuid(&mut rng),
                name: format!("Strategy_{}", i + 1),
                proficiencies: pool
                    .choose_multiple(&mut rng, take)
                    .map(|d| d.id.clone())
                    .collect(),
                version: 1,
            }
        })
        .collect()
}

fn base(options: &GenerateOptions) -> TenantDoc {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    // A fixed timestamp keeps generated state byte-for-byte reproducible.
    let created: Timestamp = "2026-01-01T00:00:00Z".parse().expect("valid timestamp");
    let locales: Vec<String> = if options.locales.is_empty() {
        vec!["en-us".to_string()]
    } else {
        options.locales.clone()
    };

    let mut profiles: Vec<Profile> = (0..options.profiles.max(1))
        .map(|i| Profile {
            id: uuid(&mut rng),
            name: format!("Profile_{}", i + 1),
            skills: Vec::new(),
            proficiencies: Vec::new(),
            version: 1,
        })
        .collect();

    let definitions = |names: Vec<String>, rng: &mut ChaCha8Rng| -> Vec<Definition> {
        let mut defs = Vec::new();
        for name in names {
            for locale in &locales {
                let profile = profiles.choose(rng).expect("at least one profile");
                defs.push(Definition {
                    id: uuid(rng),
                    name: name.clone(),
                    locale: locale.clone(),
                    active: true,
                    description: format!("{} ({locale})", name.replace('_', " ")),
                    routing_profile_id: profile.id.clone(),
                    version: 1,
                    date_modified: created,
                });
            }
        }
        defs
    };
    let mut skills = definitions((0..options.skills).map(skill_name).collect(), &mut rng);
    let mut proficiencies = definitions(
        (0..options.proficiencies).map(proficiency_name).collect(),
        &mut rng,
    );
    skills.extend(definitions(
        EXT_SKILL_TOPICS.iter().map(|s| s.to_string()).collect(),
        &mut rng,
    ));
    proficiencies.extend(definitions(
        EXT_PROFICIENCY_TOPICS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        &mut rng,
    ));
    debug_assert!(skills.iter().any(|d| d.name.starts_with(OWNED_PREFIX)));

    // Each profile references a few skills and proficiencies, so deletes meet referential integrity.
    for profile in &mut profiles {
        for d in skills.choose_multiple(&mut rng, 3.min(skills.len())) {
            profile.skills.push(d.id.clone());
        }
        for d in proficiencies.choose_multiple(&mut rng, 1.min(proficiencies.len())) {
            profile.proficiencies.push(d.id.clone());
        }
    }

    let in_locale = |defs: &[Definition], locale: &str, ext: bool| -> Vec<String> {
        defs.iter()
            .filter(|d| d.locale == locale && d.name.starts_with(OWNED_PREFIX) == ext)
            .map(|d| d.id.clone())
            .collect()
    };
    let mut users = Vec::with_capacity(options.agents);
    for i in 0..options.agents {
        let locale = locales[rng.random_range(0..locales.len())].clone();
        let first = *FIRST_NAMES.choose(&mut rng).expect("names");
        let last = *LAST_NAMES.choose(&mut rng).expect("names");
        let pick = |pool: Vec<String>, most: usize, rng: &mut ChaCha8Rng| -> Vec<Assignment> {
            let count = rng.random_range(0..=most.min(pool.len()));
            pool.choose_multiple(rng, count)
                .map(|id| Assignment {
                    id: id.clone(),
                    level: rng.random_range(1..=10),
                    active: true,
                })
                .collect()
        };
        let mut user_skills = pick(in_locale(&skills, &locale, false), 4, &mut rng);
        user_skills.extend(pick(in_locale(&skills, &locale, true), 1, &mut rng));
        let mut user_proficiencies = pick(in_locale(&proficiencies, &locale, false), 2, &mut rng);
        user_proficiencies.extend(pick(in_locale(&proficiencies, &locale, true), 1, &mut rng));
        users.push(User {
            id: uuid(&mut rng),
            first_name: first.to_string(),
            last_name: last.to_string(),
            email: format!(
                "{}.{}.{}@example.com",
                ascii_lower(first),
                ascii_lower(last),
                i + 1
            ),
            locale,
            routing_profile_id: profiles.choose(&mut rng).expect("profiles").id.clone(),
            skills: user_skills,
            proficiencies: user_proficiencies,
            version: 1,
            date_modified: created,
        });
    }

    // Every non-Ext skill has a production queue; every other one also has a test queue, so
    // tools must cope with skills no non-production queue covers.
    let mut queues = Vec::new();
    for (i, skill) in skills
        .iter()
        .filter(|d| !d.name.starts_with(OWNED_PREFIX))
        .enumerate()
    {
        queues.push(Queue {
            id: uuid(&mut rng),
            name: format!("Q_{}_{}", skill.name, skill.locale),
            skill_id: skill.id.clone(),
            min_level: 1,
            production: true,
        });
        if (i / locales.len()).is_multiple_of(2) {
            queues.push(Queue {
                id: uuid(&mut rng),
                name: format!("Test_{}_{}", skill.name, skill.locale),
                skill_id: skill.id.clone(),
                min_level: 1,
                production: false,
            });
        }
    }

    TenantDoc {
        profiles,
        skills,
        proficiencies,
        users,
        queues,
        strategies: Vec::new(),
        clients: Vec::new(),
    }
}

fn ascii_lower(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'é' => 'e',
            'ü' => 'u',
            'í' => 'i',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Tenant;

    #[test]
    fn the_same_seed_gives_the_same_tenant_and_another_seed_does_not() {
        let options = GenerateOptions::default();
        assert_eq!(generate(&options), generate(&options));
        let other = GenerateOptions {
            seed: 2,
            ..options.clone()
        };
        assert_ne!(generate(&options), generate(&other));
    }

    #[test]
    fn generated_tenants_are_internally_consistent() {
        let doc = generate(&GenerateOptions {
            agents: 500,
            skills: 20,
            ..Default::default()
        });
        assert_eq!(doc.users.len(), 500);
        // 20 names plus the Ext_ ones, in each of two locales.
        assert_eq!(doc.skills.len(), (20 + EXT_SKILL_TOPICS.len()) * 2);
        Tenant::from_doc(doc).expect("every reference resolves");
    }

    #[test]
    fn strategies_are_extra_and_leave_the_rest_of_the_tenant_as_it_was() {
        let options = GenerateOptions::default();
        let plain = generate(&options);
        assert!(plain.strategies.is_empty(), "off unless asked for");
        let with = generate_with(&options, &Extras { strategies: 4 });
        assert_eq!(with.strategies.len(), 4);
        assert_eq!(
            TenantDoc {
                strategies: Vec::new(),
                ..with.clone()
            },
            plain,
            "everything else is what generate makes"
        );
        assert_eq!(with, generate_with(&options, &Extras { strategies: 4 }));
        for strategy in &with.strategies {
            assert!(!strategy.proficiencies.is_empty(), "{strategy:?}");
        }
        Tenant::from_doc(with).expect("every reference resolves");
    }

    #[test]
    fn agents_only_hold_skills_of_their_own_locale() {
        let doc = generate(&GenerateOptions::default());
        for user in &doc.users {
            for a in &user.skills {
                let def = doc.skills.iter().find(|d| d.id == a.id).unwrap();
                assert_eq!(def.locale, user.locale);
            }
        }
    }
}
