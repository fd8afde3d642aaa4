//! The second source document's script, in Rust, as the baseline: for each user, fetch it
//! (`GET /users/{id}`), set one skill in `skills.proficiencies`, put the whole list back
//! (`PUT /users/{id}`, no `If-Match`), pause 0.2 s; serially. Like the script it retries a failed
//! user up to five times with exponential waits from 2 s, and it knows skill ids up front, so the
//! definitions it needs are created first with one `POST` each (fewer calls than the script's
//! users would make looking them up by hand).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::scenario::{NewDefinition, SkillChange, SkillTarget};

/// The script's "polite delay" between users.
const POLITE_DELAY: Duration = Duration::from_millis(200);
/// tenacity's `stop_after_attempt(5)`.
const ATTEMPTS: u32 = 5;

/// What the baseline did.
#[derive(Debug, Clone, Copy)]
pub struct NaiveRun {
    /// Users it updated.
    pub users: usize,
    /// Time for the token and the definitions it created.
    pub setup: Duration,
    /// Time for the users.
    pub per_users: Duration,
    /// Users that failed after every attempt.
    pub failed: usize,
}

impl NaiveRun {
    /// The mean time per user, the delay included.
    pub fn per_user(&self) -> Duration {
        self.per_users / self.users.max(1) as u32
    }
}

/// Runs the script against `base` (the simulator's root URL) for `changes`.
pub async fn run(
    base: &str,
    new_definitions: &[NewDefinition],
    changes: &[SkillChange],
) -> anyhow::Result<NaiveRun> {
    let http = reqwest::Client::new();
    let api = format!("{base}/api/v2");
    let started = Instant::now();
    let token = token(&http, &api).await?;
    let mut created: BTreeMap<(String, String), String> = BTreeMap::new();
    for new in new_definitions {
        let answer = http
            .post(format!("{api}/routing/skills"))
            .bearer_auth(&token)
            .json(&json!({
                "name": new.code,
                "locale": new.locale,
                "active": true,
                "description": "created by the naive baseline",
                "routingProfileId": new.routing_profile_id,
            }))
            .send()
            .await?
            .error_for_status()
            .context("the naive baseline could not create a definition")?;
        let body: Value = answer.json().await?;
        let id = body["id"]
            .as_str()
            .context("a created definition has an id")?;
        created.insert((new.code.clone(), new.locale.clone()), id.to_string());
    }
    let setup = started.elapsed();

    let users_started = Instant::now();
    let mut failed = 0;
    for change in changes {
        let skill_id = match &change.skill {
            SkillTarget::Existing(id) => id.clone(),
            SkillTarget::New { code, locale } => created
                .get(&(code.clone(), locale.clone()))
                .cloned()
                .context("the scenario's new definition was created")?,
        };
        if update_with_retries(
            &http,
            &api,
            &token,
            &change.user_id,
            &skill_id,
            change.level,
        )
        .await
        .is_err()
        {
            failed += 1;
        }
        tokio::time::sleep(POLITE_DELAY).await;
    }
    Ok(NaiveRun {
        users: changes.len(),
        setup,
        per_users: users_started.elapsed(),
        failed,
    })
}

async fn token(http: &reqwest::Client, api: &str) -> anyhow::Result<String> {
    let answer: Value = http
        .post(format!("{api}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", skillsync_sim::DEMO_CLIENT_ID),
            ("client_secret", skillsync_sim::DEMO_CLIENT_SECRET),
        ])
        .send()
        .await?
        .error_for_status()
        .context("the naive baseline could not get a token")?
        .json()
        .await?;
    Ok(answer["access_token"]
        .as_str()
        .context("a token answer carries access_token")?
        .to_string())
}

async fn update_with_retries(
    http: &reqwest::Client,
    api: &str,
    token: &str,
    user_id: &str,
    skill_id: &str,
    level: u8,
) -> anyhow::Result<()> {
    let mut wait = Duration::from_secs(2);
    for attempt in 1..=ATTEMPTS {
        match update_single_user(http, api, token, user_id, skill_id, level).await {
            Ok(()) => return Ok(()),
            Err(error) if attempt == ATTEMPTS => return Err(error),
            Err(_) => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
    unreachable!("the last attempt returns")
}

async fn update_single_user(
    http: &reqwest::Client,
    api: &str,
    token: &str,
    user_id: &str,
    skill_id: &str,
    level: u8,
) -> anyhow::Result<()> {
    let url = format!("{api}/users/{user_id}");
    let mut user: Value = http
        .get(&url)
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let skills = user["skills"]["proficiencies"]
        .as_array_mut()
        .context("a user carries skills.proficiencies")?;
    match skills.iter_mut().find(|s| s["skill"] == skill_id) {
        Some(held) => held["level"] = json!(level),
        None => skills.push(json!({ "skill": skill_id, "level": level })),
    }
    let answer = http
        .put(&url)
        .bearer_auth(token)
        .json(&json!({ "skills": user["skills"] }))
        .send()
        .await?;
    if !answer.status().is_success() {
        bail!("PUT {url}: {}", answer.status());
    }
    Ok(())
}
