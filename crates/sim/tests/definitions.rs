//! SPEC 1.2 (skills and proficiencies) and the routing-profile half of 1.3.

mod common;

use common::detail_fields;

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};

const SKILLS: &str = "/api/v2/routing/skills";
const PROFICIENCIES: &str = "/api/v2/routing/proficiencies";
const PROFILES: &str = "/api/v2/routing/profiles";

/// The first routing profile's id.
async fn a_profile(sim: &common::TestSim) -> String {
    sim.state().await["profiles"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn body_for(name: &str, locale: &str, profile: &str) -> Value {
    json!({
        "name": name,
        "locale": locale,
        "active": true,
        "description": format!("{name} for tests"),
        "routingProfileId": profile,
    })
}

fn ids(entities: &Value) -> Vec<String> {
    entities
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// Users and profiles that reference `id` in `/sim/state`, under `field` ("skills" or "proficiencies").
fn references_in_state(state: &Value, field: &str, id: &str) -> (u64, u64) {
    let users = state["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u[field].as_array().unwrap().iter().any(|a| a["id"] == id))
        .count() as u64;
    let profiles = state["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p[field].as_array().unwrap().iter().any(|r| r == id))
        .count() as u64;
    (users, profiles)
}

/// A definition of class `field` referenced by at least one user and one profile.
fn doubly_referenced(state: &Value, field: &str) -> (String, u64, u64) {
    state[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let id = d["id"].as_str().unwrap().to_string();
            let (users, profiles) = references_in_state(state, field, &id);
            (id, users, profiles)
        })
        .find(|(_, users, profiles)| *users > 0 && *profiles > 0)
        .expect("the generated tenant has a definition referenced by users and a profile")
}

#[tokio::test]
async fn post_without_active_is_400_naming_active() {
    let sim = common::start().await;
    let token = sim.token().await;
    let profile = a_profile(&sim).await;
    let mut body = body_for("No_Active_Flag", "en-us", &profile);
    body.as_object_mut().unwrap().remove("active");
    let answer = sim.post(SKILLS, &token, body).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.body["code"], "VALIDATION_ERROR");
    assert_eq!(detail_fields(&answer.body), vec!["active"]);
    let state = sim.state().await;
    assert!(
        state["skills"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != "No_Active_Flag")
    );
}

#[tokio::test]
async fn post_without_routing_profile_id_is_400_naming_it() {
    let sim = common::start().await;
    let token = sim.token().await;
    let mut body = body_for("No_Profile", "en-us", "unused");
    body.as_object_mut().unwrap().remove("routingProfileId");
    let answer = sim.post(PROFICIENCIES, &token, body).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(detail_fields(&answer.body), vec!["routingProfileId"]);
    let state = sim.state().await;
    assert!(
        state["proficiencies"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"] != "No_Profile")
    );
}

/// Found by schemathesis (issue 13): an empty `routingProfileId` or `locale` was taken as
/// given, making a definition that names no routing profile or no locale, on POST and on PUT.
#[tokio::test]
async fn empty_routing_profile_id_or_locale_is_400_naming_it_on_post_and_put() {
    let sim = common::start().await;
    let token = sim.token().await;
    let profile = a_profile(&sim).await;
    let existing = sim
        .post(SKILLS, &token, body_for("Kept_As_Is", "en-us", &profile))
        .await;
    assert_eq!(existing.status, 201, "{}", existing.body);
    let existing_path = format!("{SKILLS}/{}", existing.body["id"].as_str().unwrap());
    for (field, body) in [
        ("routingProfileId", body_for("Empty_Field", "en-us", "")),
        ("locale", body_for("Empty_Field", "", &profile)),
    ] {
        for class in [SKILLS, PROFICIENCIES] {
            let answer = sim.post(class, &token, body.clone()).await;
            assert_eq!(answer.status, 400, "POST {class} {field}: {}", answer.body);
            assert_eq!(detail_fields(&answer.body), vec![field]);
        }
        let answer = sim.put(&existing_path, &token, body.clone()).await;
        assert_eq!(answer.status, 400, "PUT {field}: {}", answer.body);
        assert_eq!(detail_fields(&answer.body), vec![field]);
    }
    for class in [SKILLS, PROFICIENCIES] {
        let listed = sim.get(&format!("{class}?name=Empty_Field"), &token).await;
        assert_eq!(listed.body["total"], 0, "{class}: {}", listed.body);
    }
    let kept = sim.get(&existing_path, &token).await;
    assert_eq!(kept.body["version"], 1);
    assert_eq!(kept.body["name"], "Kept_As_Is");
}

#[tokio::test]
async fn post_with_a_routing_profile_that_does_not_exist_is_400() {
    let sim = common::start().await;
    let token = sim.token().await;
    let answer = sim
        .post(
            SKILLS,
            &token,
            body_for(
                "Ghost_Profile",
                "en-us",
                "00000000-0000-4000-8000-000000000000",
            ),
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(detail_fields(&answer.body), vec!["routingProfileId"]);
    let listed = sim
        .get(&format!("{SKILLS}?name=Ghost_Profile"), &token)
        .await;
    assert_eq!(listed.body["total"], 0);
}

#[tokio::test]
async fn post_returns_201_with_location_and_etag_of_the_new_definition() {
    let sim = common::start().await;
    let token = sim.token().await;
    let profile = a_profile(&sim).await;
    let answer = sim
        .post(SKILLS, &token, body_for("Fresh_Skill", "en-us", &profile))
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let id = answer.body["id"].as_str().unwrap();
    assert_eq!(answer.body["name"], "Fresh_Skill");
    assert_eq!(answer.body["locale"], "en-us");
    assert_eq!(answer.body["active"], true);
    assert_eq!(answer.body["routingProfileId"], profile);
    assert_eq!(answer.body["version"], 1);
    assert!(answer.body["dateModified"].is_string());
    assert_eq!(answer.header("etag").as_deref(), Some("\"1\""));
    let location = answer.header("location").expect("Location header");
    assert!(
        location.ends_with(&format!("/routing/skills/{id}")),
        "{location}"
    );
    let path = location.strip_prefix(&sim.base).unwrap_or(&location);
    let fetched = sim.get(path, &token).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body, answer.body);
    assert_eq!(fetched.header("etag").as_deref(), Some("\"1\""));
}

#[tokio::test]
async fn duplicate_name_and_locale_is_accepted_and_makes_two_objects() {
    let sim = common::start().await;
    let token = sim.token().await;
    let profile = a_profile(&sim).await;
    assert_eq!(sim.stats().await["duplicatesCreated"], 0);
    let first = sim
        .post(SKILLS, &token, body_for("Twice_Posted", "en-us", &profile))
        .await;
    let second = sim
        .post(SKILLS, &token, body_for("Twice_Posted", "en-us", &profile))
        .await;
    assert_eq!(first.status, 201);
    assert_eq!(second.status, 201);
    assert_ne!(first.body["id"], second.body["id"]);
    let listed = sim
        .get(&format!("{SKILLS}?name=Twice_Posted&locale=en-us"), &token)
        .await;
    assert_eq!(listed.body["total"], 2);
    let mut listed_ids = ids(&listed.body["entities"]);
    listed_ids.sort();
    let mut created = vec![
        first.body["id"].as_str().unwrap().to_string(),
        second.body["id"].as_str().unwrap().to_string(),
    ];
    created.sort();
    assert_eq!(listed_ids, created);
    assert_eq!(sim.stats().await["duplicatesCreated"], 1);
}

#[tokio::test]
async fn duplicate_proficiency_is_accepted_and_counted() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    // Re-post an existing generated proficiency's name+locale.
    let existing = &state["proficiencies"][0];
    let name = existing["name"].as_str().unwrap();
    let locale = existing["locale"].as_str().unwrap();
    let answer = sim
        .post(
            PROFICIENCIES,
            &token,
            body_for(name, locale, existing["routingProfileId"].as_str().unwrap()),
        )
        .await;
    assert_eq!(answer.status, 201);
    assert_ne!(answer.body["id"], existing["id"]);
    let listed = sim
        .get(
            &format!("{PROFICIENCIES}?name={name}&locale={locale}"),
            &token,
        )
        .await;
    assert_eq!(listed.body["total"], 2);
    assert_eq!(sim.stats().await["duplicatesCreated"], 1);
}

#[tokio::test]
async fn same_name_in_two_locales_is_two_distinct_objects_filtered_by_locale() {
    let sim = common::start().await;
    let token = sim.token().await;
    let profile = a_profile(&sim).await;
    let en = sim
        .post(SKILLS, &token, body_for("Bilingual", "en-us", &profile))
        .await;
    let de = sim
        .post(SKILLS, &token, body_for("Bilingual", "de-de", &profile))
        .await;
    assert_eq!((en.status.as_u16(), de.status.as_u16()), (201, 201));
    assert_ne!(en.body["id"], de.body["id"]);
    // A second locale is not a duplicate.
    assert_eq!(sim.stats().await["duplicatesCreated"], 0);

    let all = sim.get(&format!("{SKILLS}?name=Bilingual"), &token).await;
    assert_eq!(all.body["total"], 2);
    let only_de = sim
        .get(&format!("{SKILLS}?name=Bilingual&locale=de-de"), &token)
        .await;
    assert_eq!(only_de.body["total"], 1);
    assert_eq!(only_de.body["entities"][0]["id"], de.body["id"]);
    assert_eq!(only_de.body["entities"][0]["locale"], "de-de");

    // No inheritance: changing one locale leaves the other alone.
    let de_id = de.body["id"].as_str().unwrap();
    let mut changed = body_for("Bilingual", "de-de", &profile);
    changed["description"] = json!("nur deutsch");
    let put = sim.put(&format!("{SKILLS}/{de_id}"), &token, changed).await;
    assert_eq!(put.status, 200);
    let en_again = sim
        .get(
            &format!("{SKILLS}/{}", en.body["id"].as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(en_again.body["description"], "Bilingual for tests");
    assert_eq!(en_again.body["version"], 1);
}

#[tokio::test]
async fn generated_locales_list_each_skill_name_once_per_locale() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let name = state["skills"][0]["name"].as_str().unwrap();
    for locale in ["en-us", "de-de"] {
        let answer = sim
            .get(&format!("{SKILLS}?name={name}&locale={locale}"), &token)
            .await;
        assert_eq!(answer.body["total"], 1, "{name} in {locale}");
        assert_eq!(answer.body["entities"][0]["locale"], locale);
    }
}

#[tokio::test]
async fn name_filter_matches_exactly() {
    let sim = common::start().await;
    let token = sim.token().await;
    let profile = a_profile(&sim).await;
    for name in ["Exact", "Exact_Plus", "exact", "Pre_Exact"] {
        let answer = sim
            .post(SKILLS, &token, body_for(name, "en-us", &profile))
            .await;
        assert_eq!(answer.status, 201);
    }
    let answer = sim.get(&format!("{SKILLS}?name=Exact"), &token).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["total"], 1, "{}", answer.body);
    assert_eq!(answer.body["entities"][0]["name"], "Exact");
    let none = sim.get(&format!("{SKILLS}?name=Exac"), &token).await;
    assert_eq!(none.body["total"], 0);
    assert_eq!(none.body["entities"], json!([]));
}

#[tokio::test]
async fn page_size_over_500_is_400_and_500_is_accepted() {
    let sim = common::start().await;
    let token = sim.token().await;
    let too_big = sim.get(&format!("{SKILLS}?pageSize=501"), &token).await;
    assert_eq!(too_big.status, 400, "{}", too_big.body);
    assert_eq!(detail_fields(&too_big.body), vec!["pageSize"]);
    let max = sim
        .get(&format!("{PROFICIENCIES}?pageSize=500"), &token)
        .await;
    assert_eq!(max.status, 200);
    assert_eq!(max.body["pageSize"], 500);
}

#[tokio::test]
async fn pages_cover_every_definition_exactly_once_with_a_stable_total() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let expected: HashSet<String> = ids(&state["skills"]).into_iter().collect();
    assert!(expected.len() > 7, "the tenant needs several pages of 3");

    let default_page = sim.get(SKILLS, &token).await;
    assert_eq!(default_page.body["page"], 1);
    assert_eq!(default_page.body["pageSize"], 100);
    assert_eq!(default_page.body["total"], expected.len());

    let mut seen = Vec::new();
    let mut page = 1;
    loop {
        let answer = sim
            .get(&format!("{SKILLS}?page={page}&pageSize=3"), &token)
            .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["page"], page);
        assert_eq!(answer.body["pageSize"], 3);
        assert_eq!(answer.body["total"], expected.len());
        let got = ids(&answer.body["entities"]);
        if got.is_empty() {
            break;
        }
        assert!(got.len() <= 3);
        seen.extend(got);
        page += 1;
    }
    assert_eq!(page, expected.len().div_ceil(3) + 1);
    assert_eq!(seen.len(), expected.len(), "no definition appears twice");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), expected);
}

#[tokio::test]
async fn put_with_stale_if_match_is_412_and_changes_nothing() {
    let sim = common::start().await;
    let token = sim.token().await;
    let profile = a_profile(&sim).await;
    let created = sim
        .post(SKILLS, &token, body_for("Guarded", "en-us", &profile))
        .await;
    let path = format!("{SKILLS}/{}", created.body["id"].as_str().unwrap());
    // Someone else moves it to version 2.
    let other = sim
        .put(&path, &token, body_for("Guarded", "en-us", &profile))
        .await;
    assert_eq!(other.body["version"], 2);

    let mut mine = body_for("Guarded_Renamed", "en-us", &profile);
    mine["active"] = json!(false);
    let answer = sim
        .call(
            Method::PUT,
            &path,
            Some(&token),
            Some(mine),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!(answer.status, 412, "{}", answer.body);
    let now = sim.get(&path, &token).await;
    assert_eq!(now.body["name"], "Guarded");
    assert_eq!(now.body["active"], true);
    assert_eq!(now.body["version"], 2);
}

/// Found by schemathesis (issue 13): `If-Match` was read by stripping quotes and `W/` wherever
/// they were, so a malformed tag such as `"1` or `W/W/"1"` was taken as version 1 and written.
/// Only the documented forms (`"7"`, `7`, `W/"7"`, `*`) are ETags; anything else is 400.
#[tokio::test]
async fn if_match_takes_only_the_documented_forms_and_refuses_the_rest_changing_nothing() {
    let sim = common::start().await;
    let token = sim.token().await;
    let profile = a_profile(&sim).await;
    let created = sim
        .post(SKILLS, &token, body_for("Tagged", "en-us", &profile))
        .await;
    let path = format!("{SKILLS}/{}", created.body["id"].as_str().unwrap());
    for malformed in [
        "\"1",
        "1\"",
        "W/1",
        "W/W/\"1\"",
        "\"\"1\"\"",
        "\"1\" x",
        "one",
    ] {
        let answer = sim
            .call(
                Method::PUT,
                &path,
                Some(&token),
                Some(body_for("Tagged_Changed", "en-us", &profile)),
                &[("If-Match", malformed)],
            )
            .await;
        assert_eq!(answer.status, 400, "If-Match {malformed}: {}", answer.body);
        assert_eq!(detail_fields(&answer.body), vec!["If-Match"]);
        let now = sim.get(&path, &token).await;
        assert_eq!(now.body["version"], 1, "If-Match {malformed} wrote");
    }
    for (version, form) in [(1, "\"1\""), (2, "2"), (3, "W/\"3\""), (4, "*")] {
        let answer = sim
            .call(
                Method::PUT,
                &path,
                Some(&token),
                Some(body_for("Tagged", "en-us", &profile)),
                &[("If-Match", form)],
            )
            .await;
        assert_eq!(answer.status, 200, "If-Match {form}: {}", answer.body);
        assert_eq!(answer.body["version"], version + 1);
    }
}

#[tokio::test]
async fn put_with_fresh_if_match_replaces_the_whole_definition_and_bumps_the_version() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let profiles: Vec<String> = ids(&state["profiles"]);
    assert!(profiles.len() >= 2);
    let created = sim
        .post(
            PROFICIENCIES,
            &token,
            body_for("Replaced", "en-us", &profiles[0]),
        )
        .await;
    let path = format!("{PROFICIENCIES}/{}", created.body["id"].as_str().unwrap());
    let etag = created.header("etag").unwrap();

    // Full replace: the description is left out, so it does not survive.
    let replacement = json!({
        "name": "Replaced_V2",
        "locale": "de-de",
        "active": true,
        "routingProfileId": profiles[1],
    });
    let answer = sim
        .call(
            Method::PUT,
            &path,
            Some(&token),
            Some(replacement),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["version"], 2);
    assert_eq!(answer.header("etag").as_deref(), Some("\"2\""));
    assert_eq!(answer.body["id"], created.body["id"]);
    let fetched = sim.get(&path, &token).await;
    assert_eq!(fetched.body["name"], "Replaced_V2");
    assert_eq!(fetched.body["locale"], "de-de");
    assert_eq!(fetched.body["routingProfileId"], profiles[1]);
    assert_eq!(fetched.body["description"], "");
    assert_eq!(fetched.body["version"], 2);
}

#[tokio::test]
async fn put_without_if_match_is_accepted() {
    let sim = common::start().await;
    let token = sim.token().await;
    let profile = a_profile(&sim).await;
    let created = sim
        .post(SKILLS, &token, body_for("Unguarded", "en-us", &profile))
        .await;
    let path = format!("{SKILLS}/{}", created.body["id"].as_str().unwrap());
    let answer = sim
        .put(&path, &token, body_for("Unguarded", "en-us", &profile))
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["version"], 2);
}

#[tokio::test]
async fn put_still_validates_like_post() {
    let sim = common::start().await;
    let token = sim.token().await;
    let profile = a_profile(&sim).await;
    let created = sim
        .post(SKILLS, &token, body_for("Validated", "en-us", &profile))
        .await;
    let path = format!("{SKILLS}/{}", created.body["id"].as_str().unwrap());
    let mut body = body_for("Validated", "en-us", &profile);
    body.as_object_mut().unwrap().remove("active");
    let answer = sim.put(&path, &token, body).await;
    assert_eq!(answer.status, 400);
    assert_eq!(detail_fields(&answer.body), vec!["active"]);
    assert_eq!(sim.get(&path, &token).await.body["version"], 1);
}

#[tokio::test]
async fn delete_referenced_skill_is_409_referenced_with_counts_matching_state() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let (id, users, profiles) = doubly_referenced(&state, "skills");
    let answer = sim
        .call(
            Method::DELETE,
            &format!("{SKILLS}/{id}"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert_eq!(answer.body["code"], "REFERENCED");
    assert_eq!(answer.body["references"]["users"], users);
    assert_eq!(answer.body["references"]["profiles"], profiles);
    assert_eq!(sim.get(&format!("{SKILLS}/{id}"), &token).await.status, 200);
}

#[tokio::test]
async fn delete_referenced_proficiency_is_409_referenced_with_counts_matching_state() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let (id, users, profiles) = doubly_referenced(&state, "proficiencies");
    let answer = sim
        .call(
            Method::DELETE,
            &format!("{PROFICIENCIES}/{id}"),
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert_eq!(answer.body["code"], "REFERENCED");
    assert_eq!(
        answer.body["references"],
        json!({ "users": users, "profiles": profiles })
    );
}

#[tokio::test]
async fn delete_referenced_only_by_a_profile_is_409_until_the_profile_lets_go() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let profile = &state["profiles"][0];
    let profile_id = profile["id"].as_str().unwrap();
    let created = sim
        .post(
            SKILLS,
            &token,
            body_for("Profile_Only", "en-us", profile_id),
        )
        .await;
    let id = created.body["id"].as_str().unwrap().to_string();
    let path = format!("{SKILLS}/{id}");

    let mut skills = profile["skills"].as_array().unwrap().clone();
    let original = skills.clone();
    skills.push(json!(id));
    let put = sim
        .put(
            &format!("{PROFILES}/{profile_id}"),
            &token,
            json!({ "skills": skills }),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);

    let refused = sim
        .call(Method::DELETE, &path, Some(&token), None, &[])
        .await;
    assert_eq!(refused.status, 409);
    assert_eq!(
        refused.body["references"],
        json!({ "users": 0, "profiles": 1 })
    );

    let put = sim
        .put(
            &format!("{PROFILES}/{profile_id}"),
            &token,
            json!({ "skills": original }),
        )
        .await;
    assert_eq!(put.status, 200);
    let deleted = sim
        .call(Method::DELETE, &path, Some(&token), None, &[])
        .await;
    assert_eq!(deleted.status, 204);
}

#[tokio::test]
async fn delete_unreferenced_definition_is_204_and_then_get_is_404() {
    let sim = common::start().await;
    let token = sim.token().await;
    let profile = a_profile(&sim).await;
    let created = sim
        .post(SKILLS, &token, body_for("Short_Lived", "en-us", &profile))
        .await;
    let path = format!("{SKILLS}/{}", created.body["id"].as_str().unwrap());
    let answer = sim
        .call(Method::DELETE, &path, Some(&token), None, &[])
        .await;
    assert_eq!(answer.status, 204);
    assert_eq!(answer.body, Value::Null);
    let gone = sim.get(&path, &token).await;
    assert_eq!(gone.status, 404);
    assert_eq!(
        sim.get(&format!("{SKILLS}?name=Short_Lived"), &token)
            .await
            .body["total"],
        0
    );
    let state = sim.state().await;
    assert!(
        state["skills"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["id"] != created.body["id"])
    );
    // Deleting it again is 404.
    let again = sim
        .call(Method::DELETE, &path, Some(&token), None, &[])
        .await;
    assert_eq!(again.status, 404);
}

#[tokio::test]
async fn soft_delete_keeps_the_definition_listed_as_inactive_and_active_filter_separates_it() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    // A referenced skill cannot be deleted, but it can be retired softly.
    let (id, _, _) = doubly_referenced(&state, "skills");
    let path = format!("{SKILLS}/{id}");
    let current = sim.get(&path, &token).await;
    let mut body = current.body.clone();
    body["active"] = json!(false);
    let answer = sim
        .call(
            Method::PUT,
            &path,
            Some(&token),
            Some(body),
            &[("If-Match", &current.header("etag").unwrap())],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["active"], false);

    let name = current.body["name"].as_str().unwrap();
    let locale = current.body["locale"].as_str().unwrap();
    let listed = sim
        .get(&format!("{SKILLS}?name={name}&locale={locale}"), &token)
        .await;
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["entities"][0]["active"], false);

    let inactive = sim.get(&format!("{SKILLS}?active=false"), &token).await;
    assert_eq!(ids(&inactive.body["entities"]), vec![id.clone()]);
    let active = sim
        .get(&format!("{SKILLS}?active=true&pageSize=500"), &token)
        .await;
    assert!(!ids(&active.body["entities"]).contains(&id));
    assert_eq!(
        active.body["total"].as_u64().unwrap() + 1,
        state["skills"].as_array().unwrap().len() as u64
    );
    // Users keep their assignment to it.
    let after = sim.state().await;
    assert_eq!(
        references_in_state(&after, "skills", &id),
        references_in_state(&state, "skills", &id)
    );
}

#[tokio::test]
async fn uppercase_locale_is_400_on_post_and_on_the_list_filter() {
    let sim = common::start().await;
    let token = sim.token().await;
    let profile = a_profile(&sim).await;
    let answer = sim
        .post(SKILLS, &token, body_for("Shouty", "en-US", &profile))
        .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(detail_fields(&answer.body), vec!["locale"]);
    assert_eq!(
        sim.get(&format!("{SKILLS}?name=Shouty"), &token).await.body["total"],
        0
    );
    let listed = sim.get(&format!("{SKILLS}?locale=en-US"), &token).await;
    assert_eq!(listed.status, 400);
    assert_eq!(detail_fields(&listed.body), vec!["locale"]);
}

#[tokio::test]
async fn profiles_filter_by_skill_id_returns_exactly_the_profiles_referencing_it() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let profiles = state["profiles"].as_array().unwrap();
    let skill = profiles[0]["skills"][0].as_str().unwrap();
    let mut expected: Vec<String> = profiles
        .iter()
        .filter(|p| p["skills"].as_array().unwrap().iter().any(|s| s == skill))
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    expected.sort();
    let answer = sim
        .get(&format!("{PROFILES}?skillId={skill}"), &token)
        .await;
    assert_eq!(answer.status, 200);
    let mut got = ids(&answer.body["entities"]);
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(answer.body["total"], expected.len());
    for p in answer.body["entities"].as_array().unwrap() {
        assert!(p["version"].is_u64());
        assert!(p["proficiencies"].is_array());
    }
    // A skill nobody references matches no profile.
    let unreferenced = state["skills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .find(|id| {
            !profiles
                .iter()
                .any(|p| p["skills"].as_array().unwrap().iter().any(|s| s == id))
        })
        .expect("some skill is in no profile");
    let none = sim
        .get(&format!("{PROFILES}?skillId={unreferenced}"), &token)
        .await;
    assert_eq!(none.body["total"], 0);
}

#[tokio::test]
async fn profiles_filter_by_proficiency_id_returns_exactly_the_profiles_referencing_it() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let profiles = state["profiles"].as_array().unwrap();
    let proficiency = profiles[0]["proficiencies"][0].as_str().unwrap();
    let mut expected: Vec<String> = profiles
        .iter()
        .filter(|p| {
            p["proficiencies"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == proficiency)
        })
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    expected.sort();
    let answer = sim
        .get(&format!("{PROFILES}?proficiencyId={proficiency}"), &token)
        .await;
    let mut got = ids(&answer.body["entities"]);
    got.sort();
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
    assert_eq!(answer.body["total"], expected.len());
}

#[tokio::test]
async fn profile_put_replaces_its_lists_and_honours_if_match() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let profile = &state["profiles"][0];
    let path = format!("{PROFILES}/{}", profile["id"].as_str().unwrap());
    let fetched = sim.get(&path, &token).await;
    assert_eq!(fetched.status, 200);
    let etag = fetched.header("etag").unwrap();
    assert_eq!(etag, format!("\"{}\"", fetched.body["version"]));

    let new_skills: Vec<String> = ids(&state["skills"]).into_iter().rev().take(2).collect();
    let new_proficiencies: Vec<String> = ids(&state["proficiencies"]).into_iter().take(1).collect();
    let body = json!({ "skills": new_skills, "proficiencies": new_proficiencies });

    let stale = sim
        .call(
            Method::PUT,
            &path,
            Some(&token),
            Some(body.clone()),
            &[("If-Match", "\"999\"")],
        )
        .await;
    assert_eq!(stale.status, 412, "{}", stale.body);
    let unchanged = sim.get(&path, &token).await;
    assert_eq!(unchanged.body, fetched.body);

    let fresh = sim
        .call(
            Method::PUT,
            &path,
            Some(&token),
            Some(body),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert_eq!(fresh.body["skills"], json!(new_skills));
    assert_eq!(fresh.body["proficiencies"], json!(new_proficiencies));
    assert_eq!(
        fresh.body["version"],
        fetched.body["version"].as_u64().unwrap() + 1
    );

    // The old etag is now stale.
    let again = sim
        .call(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({ "skills": [] })),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(again.status, 412);
    let after = sim.state().await;
    let stored = after["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == profile["id"])
        .unwrap();
    assert_eq!(stored["skills"], json!(new_skills));
}

#[tokio::test]
async fn profile_put_refuses_a_proficiency_among_its_skills() {
    let sim = common::start().await;
    let token = sim.token().await;
    let state = sim.state().await;
    let profile = &state["profiles"][0];
    let path = format!("{PROFILES}/{}", profile["id"].as_str().unwrap());
    let proficiency = state["proficiencies"][0]["id"].as_str().unwrap();
    let answer = sim
        .put(&path, &token, json!({ "skills": [proficiency] }))
        .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(detail_fields(&answer.body), vec!["skills[0]"]);
    let after = sim.state().await;
    assert_eq!(after["profiles"][0], state["profiles"][0]);
}
