//! The desired state, as the HRIS files say it (SPEC section 3).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::domain::{DefinitionId, Kind, Level, Locale, UserId};

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// As text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }
    };
}

text_id!(
    /// The HRIS's code for a skill or proficiency, the same in every locale.
    Code
);
text_id!(
    /// The HRIS's id of an employee.
    EmployeeId
);

/// One row of `catalog.csv`: one locale variant of a code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogEntry {
    /// The code.
    pub code: Code,
    /// Skill or proficiency (the same for every variant of a code).
    pub kind: Kind,
    /// The variant's locale.
    pub locale: Locale,
    /// The definition's name in the tenant.
    pub name: String,
    /// Its description.
    pub description: String,
    /// The routing profile it is scoped to.
    pub routing_profile_id: String,
    /// Line in `catalog.csv`, for messages.
    pub line: u64,
}

/// Every definition skillsync owns: code × locale.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// By code, then locale.
    pub entries: BTreeMap<(Code, Locale), CatalogEntry>,
    /// The kind of each code.
    pub kinds: BTreeMap<Code, Kind>,
}

impl Catalog {
    /// The variant of `code` in `locale`, if the catalog has one.
    pub fn entry(&self, code: &Code, locale: &Locale) -> Option<&CatalogEntry> {
        self.entries.get(&(code.clone(), locale.clone()))
    }

    /// The kind of a code, if it is in the catalog.
    pub fn kind_of(&self, code: &Code) -> Option<Kind> {
        self.kinds.get(code).copied()
    }

    /// Adds a variant (readers call this once per valid row).
    pub fn insert(&mut self, entry: CatalogEntry) {
        self.kinds.insert(entry.code.clone(), entry.kind);
        self.entries
            .insert((entry.code.clone(), entry.locale.clone()), entry);
    }

    /// Locales the catalog has variants in.
    pub fn locales(&self) -> BTreeSet<&Locale> {
        self.entries.keys().map(|(_, l)| l).collect()
    }

    /// Locales `code` has variants in.
    pub fn locales_of(&self, code: &Code) -> Vec<&Locale> {
        self.entries
            .keys()
            .filter(|(c, _)| c == code)
            .map(|(_, l)| l)
            .collect()
    }
}

/// One row of `agents.csv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agent {
    /// The HRIS id.
    pub employee_id: EmployeeId,
    /// The tenant's user id.
    pub user_id: UserId,
    /// The agent's working locale: every assignment resolves to this locale's variant.
    pub locale: Locale,
    /// Line in `agents.csv`.
    pub line: u64,
}

/// One desired assignment (a row of `assignments.csv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Wanted {
    /// Level 1–10.
    pub level: Level,
    /// Active flag (defaults to true).
    pub active: bool,
    /// Line in `assignments.csv`.
    pub line: u64,
}

/// The HRIS files as the user named them, so that every message points at the real path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceFiles {
    /// `catalog.csv`'s path.
    pub catalog: String,
    /// `agents.csv`'s path.
    pub agents: String,
    /// `assignments.csv`'s path.
    pub assignments: String,
}

impl Default for SourceFiles {
    fn default() -> Self {
        SourceFiles {
            catalog: "catalog.csv".into(),
            agents: "agents.csv".into(),
            assignments: "assignments.csv".into(),
        }
    }
}

/// The whole desired state, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// Where it was read from.
    pub files: SourceFiles,
    /// What skillsync owns.
    pub catalog: Catalog,
    /// The agents the HRIS manages, by employee id. Users not listed here are left alone.
    pub agents: BTreeMap<EmployeeId, Agent>,
    /// Desired assignments per employee, by code. An agent with no entry here should hold
    /// none of the catalog's definitions.
    pub assignments: BTreeMap<EmployeeId, BTreeMap<Code, Wanted>>,
    /// Catalog variants `skillsync retire` took out of management (the journal knows them,
    /// not the HRIS files): never reactivated, recreated or reassigned, whatever the files say.
    pub retired: Vec<Retired>,
}

/// How a variant was retired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RetiredMode {
    /// Inactive in the tenant, its assignments kept for reporting.
    Soft,
    /// Its references stripped and the definition deleted.
    Hard,
}

impl RetiredMode {
    /// `soft` or `hard`, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            RetiredMode::Soft => "soft",
            RetiredMode::Hard => "hard",
        }
    }
}

/// One retired catalog variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retired {
    /// The HRIS code.
    pub code: Code,
    /// The variant's locale.
    pub locale: Locale,
    /// The tenant definitions it covered when it was retired.
    pub definitions: Vec<DefinitionId>,
    /// Soft or hard.
    pub mode: RetiredMode,
    /// The journal's run that retired it, for messages.
    pub run: i64,
}
