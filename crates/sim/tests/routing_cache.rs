//! SPEC 1.4: the routing engine routes from a cache that lags the database by the propagation
//! delay; only active skills route; test interactions go to non-production queues only.
//!
//! Every scene starts with quiet knobs (no propagation delay) so that its setup is visible to
//! routing at once, and only then turns the delay on. Time moves with `/sim/clock/advance`.

mod common;

use common::TestSim;
use serde_json::{Value, json};
use skillsync_sim::{GenerateOptions, SimConfig, SimError, TenantSource};

const INTERACTIONS: &str = "/api/v2/interactions/test";

/// A non-production queue, its skill with every assignment of it removed, and three users of
/// the skill's locale to give it to.
struct Scene {
    sim: TestSim,
    token: String,
    queue: String,
    skill: String,
    users: Vec<String>,
}

impl Scene {
    async fn new() -> Scene {
        let sim = common::start().await;
        let token = sim.token().await;
        let queues = sim.get("/api/v2/routing/queues?pageSize=500", &token).await;
        assert_eq!(queues.status, 200, "{}", queues.body);
        let state = sim.state().await;
        let queue = queues.body["entities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["production"] == false)
            .expect("a generated tenant has non-production queues")
            .clone();
        let skill = queue["skillId"].as_str().unwrap().to_string();
        let definition = find(&state["skills"], &skill);
        let locale = definition["locale"].as_str().unwrap();
        assert_eq!(
            queue["name"],
            format!("Test_{}_{}", definition["name"].as_str().unwrap(), locale),
            "non-production queues are named Test_<skill>_<locale>"
        );
        assert_eq!(queue["minLevel"], 1);

        let scene = Scene {
            token,
            queue: queue["id"].as_str().unwrap().to_string(),
            skill: skill.clone(),
            users: state["users"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|u| u["locale"] == locale)
                .take(3)
                .map(|u| u["id"].as_str().unwrap().to_string())
                .collect(),
            sim,
        };
        assert_eq!(
            scene.users.len(),
            3,
            "the small tenant has 3 users per locale"
        );
        // Nobody holds the skill: routing starts from a known, empty picture.
        for user in state["users"].as_array().unwrap() {
            if has(&user["skills"], &skill) {
                scene.set_level(user["id"].as_str().unwrap(), None).await;
            }
        }
        assert_eq!(scene.route().await, None);
        scene
    }

    /// Gives `user` the scene's skill at `level`, or removes it (`None`), keeping the rest.
    async fn set_level(&self, user: &str, level: Option<u64>) {
        self.set_assignment(user, level.map(|l| (l, true))).await;
    }

    async fn set_assignment(&self, user: &str, assignment: Option<(u64, bool)>) {
        let path = format!("/api/v2/routing/users/{user}");
        let current = self.sim.get(&path, &self.token).await;
        assert_eq!(current.status, 200, "{}", current.body);
        let mut skills: Vec<Value> = current.body["skills"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["id"] != self.skill.as_str())
            .cloned()
            .collect();
        if let Some((level, active)) = assignment {
            skills.push(json!({ "id": self.skill, "level": level, "active": active }));
        }
        let answer = self
            .sim
            .put(&path, &self.token, json!({ "skills": skills }))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }

    /// The scene's skill level of `user` as GET shows it (the database).
    async fn level_in_database(&self, user: &str) -> Option<u64> {
        let answer = self
            .sim
            .get(&format!("/api/v2/routing/users/{user}"), &self.token)
            .await;
        assert_eq!(answer.status, 200);
        answer.body["skills"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == self.skill.as_str())
            .map(|a| a["level"].as_u64().unwrap())
    }

    /// Sends a test interaction to the scene's queue: who took it, at which cached level.
    async fn route(&self) -> Option<(String, u64)> {
        route(&self.sim, &self.token, &self.queue).await
    }

    async fn set_propagation(&self, delay: &str) {
        self.sim.set_knobs(json!({ "propagation": delay })).await;
    }
}

async fn route(sim: &TestSim, token: &str, queue: &str) -> Option<(String, u64)> {
    let answer = sim
        .post(INTERACTIONS, token, json!({ "queueId": queue }))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body["interactionId"].is_string(), "{}", answer.body);
    if answer.body["routed"] == true {
        Some((
            answer.body["userId"].as_str().unwrap().to_string(),
            answer.body["level"].as_u64().unwrap(),
        ))
    } else {
        assert_eq!(answer.body["routed"], false, "{}", answer.body);
        assert!(answer.body.get("userId").is_none(), "{}", answer.body);
        assert!(answer.body["reason"].is_string(), "{}", answer.body);
        None
    }
}

fn find<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in the list"))
}

fn has(assignments: &Value, id: &str) -> bool {
    assignments
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["id"] == id)
}

#[tokio::test]
async fn write_is_invisible_to_routing_until_propagation_delay_passes() {
    let scene = Scene::new().await;
    let [fast, slow] = [&scene.users[0], &scene.users[1]];
    scene.set_level(slow, Some(5)).await;
    assert_eq!(scene.route().await, Some((slow.clone(), 5)));

    scene.set_propagation("20s").await;
    scene.set_level(fast, Some(10)).await;
    // The database has it at once...
    assert_eq!(scene.level_in_database(fast).await, Some(10));
    // ...the routing engine does not, until the delay has passed.
    assert_eq!(scene.route().await, Some((slow.clone(), 5)));
    scene.sim.advance_clock("19s").await;
    assert_eq!(scene.route().await, Some((slow.clone(), 5)));
    scene.sim.advance_clock("2s").await;
    // Highest level wins.
    assert_eq!(scene.route().await, Some((fast.clone(), 10)));
}

#[tokio::test]
async fn a_bulk_write_reaches_routing_only_after_propagation_delay() {
    let scene = Scene::new().await;
    let [first, second] = [&scene.users[0], &scene.users[1]];
    scene.set_level(second, Some(3)).await;
    scene.set_propagation("20s").await;
    let current = scene
        .sim
        .get(&format!("/api/v2/routing/users/{first}"), &scene.token)
        .await;
    let mut skills = current.body["skills"].as_array().unwrap().clone();
    skills.push(json!({ "id": scene.skill, "level": 7, "active": true }));
    let answer = scene
        .sim
        .post(
            "/api/v2/routing/users/bulk",
            &scene.token,
            json!({ "users": [{ "userId": first, "skills": skills }] }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["succeeded"], 1, "{}", answer.body);
    assert_eq!(scene.level_in_database(first).await, Some(7));
    assert_eq!(scene.route().await, Some((second.clone(), 3)));
    scene.sim.advance_clock("21s").await;
    assert_eq!(scene.route().await, Some((first.clone(), 7)));
}

#[tokio::test]
async fn a_users_dialect_write_reaches_routing_only_after_propagation_delay() {
    let scene = Scene::new().await;
    let user = &scene.users[0];
    scene.set_propagation("20s").await;
    let path = format!("/api/v2/users/{user}");
    let current = scene.sim.get(&path, &scene.token).await;
    assert_eq!(current.status, 200, "{}", current.body);
    let mut list = current.body["skills"]["proficiencies"]
        .as_array()
        .unwrap()
        .clone();
    list.push(json!({ "skill": scene.skill, "level": 6 }));
    let answer = scene
        .sim
        .put(
            &path,
            &scene.token,
            json!({ "skills": { "proficiencies": list } }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(scene.level_in_database(user).await, Some(6));
    assert_eq!(scene.route().await, None);
    scene.sim.advance_clock("21s").await;
    assert_eq!(scene.route().await, Some((user.clone(), 6)));
}

#[tokio::test]
async fn a_ranged_propagation_delay_lands_within_its_bounds() {
    let scene = Scene::new().await;
    let user = &scene.users[0];
    scene.set_propagation("15s..30s").await;
    scene.set_level(user, Some(5)).await;
    scene.sim.advance_clock("14s").await;
    assert_eq!(scene.route().await, None);
    scene.sim.advance_clock("17s").await;
    assert_eq!(scene.route().await, Some((user.clone(), 5)));
}

#[tokio::test]
async fn removal_keeps_routing_to_the_user_until_propagation_delay_passes() {
    let scene = Scene::new().await;
    let [leaving, staying] = [&scene.users[0], &scene.users[1]];
    scene.set_level(leaving, Some(9)).await;
    scene.set_level(staying, Some(2)).await;
    assert_eq!(scene.route().await, Some((leaving.clone(), 9)));

    scene.set_propagation("20s").await;
    scene.set_level(leaving, None).await;
    assert_eq!(scene.level_in_database(leaving).await, None);
    assert_eq!(scene.route().await, Some((leaving.clone(), 9)));
    scene.sim.advance_clock("19s").await;
    assert_eq!(scene.route().await, Some((leaving.clone(), 9)));
    scene.sim.advance_clock("2s").await;
    assert_eq!(scene.route().await, Some((staying.clone(), 2)));
}

#[tokio::test]
async fn removing_the_last_holder_leaves_the_queue_unrouted_only_after_the_delay() {
    let scene = Scene::new().await;
    let only = &scene.users[0];
    scene.set_level(only, Some(4)).await;
    scene.set_propagation("20s").await;
    // The empty-list trap: an empty `skills` list removes every skill.
    let answer = scene
        .sim
        .put(
            &format!("/api/v2/routing/users/{only}"),
            &scene.token,
            json!({ "skills": [] }),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["skills"], json!([]));
    assert_eq!(scene.route().await, Some((only.clone(), 4)));
    scene.sim.advance_clock("21s").await;
    assert_eq!(scene.route().await, None);
}

#[tokio::test]
async fn the_highest_cached_level_wins() {
    let scene = Scene::new().await;
    for (user, level) in scene.users.iter().zip([2, 7, 4]) {
        scene.set_level(user, Some(level)).await;
    }
    assert_eq!(scene.route().await, Some((scene.users[1].clone(), 7)));
    scene.set_level(&scene.users[2], Some(8)).await;
    assert_eq!(scene.route().await, Some((scene.users[2].clone(), 8)));
}

#[tokio::test]
async fn cache_applies_a_users_writes_in_commit_order_even_if_a_later_delay_is_shorter() {
    let scene = Scene::new().await;
    let [user, other] = [&scene.users[0], &scene.users[1]];
    scene.set_level(user, Some(10)).await;
    scene.set_level(other, Some(5)).await;
    assert_eq!(scene.route().await, Some((user.clone(), 10)));

    scene.set_propagation("20s").await;
    scene.set_level(user, None).await;
    scene.set_propagation("1s").await;
    scene.set_level(user, Some(8)).await;
    // The later write may not overtake the earlier one: the cache still shows level 10...
    scene.sim.advance_clock("2s").await;
    assert_eq!(scene.route().await, Some((user.clone(), 10)));
    // ...and once both have arrived, the later one is what the cache holds.
    scene.sim.advance_clock("19s").await;
    assert_eq!(scene.route().await, Some((user.clone(), 8)));
    scene.sim.advance_clock("10m").await;
    assert_eq!(scene.route().await, Some((user.clone(), 8)));
}

#[tokio::test]
async fn proficiencies_never_route() {
    let scene = Scene::new().await;
    let state = scene.sim.state().await;
    // Every queue requires a skill; none can name a proficiency.
    let queues = scene
        .sim
        .get("/api/v2/routing/queues?pageSize=500", &scene.token)
        .await;
    for queue in queues.body["entities"].as_array().unwrap() {
        let id = queue["skillId"].as_str().unwrap();
        assert!(has(&state["skills"], id), "{queue}");
        assert!(!has(&state["proficiencies"], id), "{queue}");
    }

    let before = scene.route().await;
    assert_eq!(before, None);
    // A proficiency that looks exactly like the queue's skill: same name, same locale.
    let skill = find(&state["skills"], &scene.skill);
    let twin = scene
        .sim
        .post(
            "/api/v2/routing/proficiencies",
            &scene.token,
            json!({
                "name": skill["name"],
                "locale": skill["locale"],
                "active": true,
                "description": "a proficiency, not a skill",
                "routingProfileId": skill["routingProfileId"],
            }),
        )
        .await;
    assert_eq!(twin.status, 201, "{}", twin.body);
    // Give the scene's users every proficiency there is, at the top level.
    let all: Vec<Value> = state["proficiencies"]
        .as_array()
        .unwrap()
        .iter()
        .chain([&twin.body])
        .map(|d| json!({ "id": d["id"], "level": 10, "active": true }))
        .collect();
    for user in &scene.users {
        let answer = scene
            .sim
            .put(
                &format!("/api/v2/routing/users/{user}"),
                &scene.token,
                json!({ "proficiencies": all }),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(
            answer.body["proficiencies"].as_array().unwrap().len(),
            all.len()
        );
    }
    scene.sim.advance_clock("10m").await;
    assert_eq!(scene.route().await, before);
}

#[tokio::test]
async fn an_inactive_skill_does_not_route() {
    let scene = Scene::new().await;
    let holder = &scene.users[0];
    scene.set_level(holder, Some(6)).await;
    assert_eq!(scene.route().await, Some((holder.clone(), 6)));

    let path = format!("/api/v2/routing/skills/{}", scene.skill);
    let definition = scene.sim.get(&path, &scene.token).await.body;
    let replace = |active: bool| {
        json!({
            "name": definition["name"],
            "locale": definition["locale"],
            "active": active,
            "description": definition["description"],
            "routingProfileId": definition["routingProfileId"],
        })
    };
    let answer = scene.sim.put(&path, &scene.token, replace(false)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["active"], false);
    // The user still holds it; it just does not route.
    assert_eq!(scene.level_in_database(holder).await, Some(6));
    assert_eq!(scene.route().await, None);
    scene.sim.advance_clock("1m").await;
    assert_eq!(scene.route().await, None);

    let answer = scene.sim.put(&path, &scene.token, replace(true)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(scene.route().await, Some((holder.clone(), 6)));
}

#[tokio::test]
async fn an_inactive_assignment_does_not_route() {
    let scene = Scene::new().await;
    let [inactive, active] = [&scene.users[0], &scene.users[1]];
    scene.set_assignment(inactive, Some((10, false))).await;
    scene.set_assignment(active, Some((1, true))).await;
    assert_eq!(scene.route().await, Some((active.clone(), 1)));
}

#[tokio::test]
async fn a_production_queue_refuses_test_interactions() {
    let sim = common::start().await;
    let token = sim.token().await;
    let queues = sim.get("/api/v2/routing/queues?pageSize=500", &token).await;
    let production = queues.body["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["production"] == true)
        .expect("every non-Ext skill has a production queue");
    assert!(production["name"].as_str().unwrap().starts_with("Q_"));
    let answer = sim
        .post(INTERACTIONS, &token, json!({ "queueId": production["id"] }))
        .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.body["code"], "VALIDATION_ERROR");
    assert_eq!(answer.body["details"][0]["field"], "queueId");
}

#[tokio::test]
async fn an_unknown_queue_is_404() {
    let sim = common::start().await;
    let token = sim.token().await;
    let answer = sim
        .post(
            INTERACTIONS,
            &token,
            json!({ "queueId": "00000000-0000-4000-8000-000000000000" }),
        )
        .await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(answer.body["status"], 404);
}

#[tokio::test]
async fn reset_discards_routing_cache_updates_still_pending() {
    let scene = Scene::new().await;
    // Back to the initial tenant, where someone takes the queue.
    let reset = scene
        .sim
        .http
        .post(scene.sim.url("/sim/reset"))
        .send()
        .await;
    assert_eq!(reset.unwrap().status(), 200);
    let initial = scene.route().await;
    let (winner, _) = initial
        .clone()
        .expect("the first test queue of the small tenant has holders");

    // A removal waits in the cache; reset must throw it away with the rest of the writes.
    scene.set_propagation("20s").await;
    scene.set_level(&winner, None).await;
    let reset = scene
        .sim
        .http
        .post(scene.sim.url("/sim/reset"))
        .send()
        .await;
    assert_eq!(reset.unwrap().status(), 200);
    scene.sim.advance_clock("21s").await;
    assert_eq!(scene.route().await, initial);
}

#[tokio::test]
async fn a_queue_cannot_require_a_proficiency() {
    let mut doc = skillsync_sim::generate(&GenerateOptions {
        agents: 5,
        skills: 2,
        proficiencies: 1,
        locales: vec!["en-us".into()],
        profiles: 1,
        seed: 3,
    });
    let proficiency = doc.proficiencies[0].id.clone();
    doc.queues[0].skill_id = proficiency.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused =
        skillsync_sim::Simulator::new(listener, SimConfig::quiet(TenantSource::Doc(Box::new(doc))))
            .err()
            .expect("a queue naming a proficiency is refused");
    assert!(
        matches!(&refused, SimError::InvalidTenant(problem)
            if matches!(problem.as_ref(), SimError::UnknownDefinition { class: "skill", id, .. }
                if id == &proficiency)),
        "{refused:?}"
    );
    assert!(
        common::chain(&refused).contains(&proficiency),
        "{refused:?}"
    );
}
