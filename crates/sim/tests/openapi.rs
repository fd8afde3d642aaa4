//! `GET /openapi.json` against the running simulator: every documented operation is really
//! served, answers only statuses it documents, needs exactly the scope it documents, and the
//! definition body's documented `required` list is what the handler enforces.

mod common;

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];

/// One documented operation.
struct Operation {
    method: Method,
    path: String,
    spec: Value,
}

impl Operation {
    fn label(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// The path with every `{param}` replaced by a fresh random UUID.
    fn concrete_path(&self) -> String {
        self.path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') && segment.ends_with('}') {
                    uuid::Uuid::new_v4().to_string()
                } else {
                    segment.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    /// A body to send: `{}` where the operation takes one.
    fn body(&self) -> Option<Value> {
        self.spec.get("requestBody").map(|_| json!({}))
    }

    /// The one scope the operation documents, if it needs a token.
    fn scope(&self) -> Option<String> {
        let requirement = self.spec["security"].as_array()?.first()?;
        Some(requirement["oauth2"][0].as_str()?.to_string())
    }

    /// Whether the operation documents `status` (exactly, or as a `5XX`-style range).
    fn documents(&self, status: StatusCode) -> bool {
        let responses = self.spec["responses"].as_object().expect("responses");
        let exact = status.as_str().to_string();
        let range = format!("{}XX", status.as_u16() / 100);
        responses.contains_key(&exact) || responses.contains_key(&range)
    }
}

async fn document(sim: &common::TestSim) -> Value {
    let answer = sim
        .call(Method::GET, "/openapi.json", None, None, &[])
        .await;
    assert_eq!(answer.status, 200, "GET /openapi.json: {:?}", answer.body);
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        answer.body["openapi"], "3.1.0",
        "not an OpenAPI 3.1 document"
    );
    answer.body
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (key, spec) in item.as_object().expect("path item") {
            if METHODS.contains(&key.as_str()) {
                found.push(Operation {
                    method: key.to_uppercase().parse().expect("an HTTP method"),
                    path: path.clone(),
                    spec: spec.clone(),
                });
            }
        }
    }
    assert!(found.len() > 20, "the document lists too few operations");
    found
}

/// Panics if the answer came from the router's fallback rather than a route's handler.
fn assert_served(op: &Operation, answer: &common::Answer) {
    assert_ne!(
        answer.status,
        StatusCode::METHOD_NOT_ALLOWED,
        "{} is documented but the router does not take that method",
        op.label()
    );
    assert_ne!(
        answer.body["code"],
        "ROUTE_NOT_FOUND",
        "{} is documented but the router has no such route: {}",
        op.label(),
        answer.body
    );
}

#[tokio::test]
async fn every_documented_operation_is_served_and_answers_a_documented_status() {
    let sim = common::start().await;
    let token = sim.token().await;
    let doc = document(&sim).await;
    let mut undocumented = Vec::new();
    for op in operations(&doc) {
        let path = op.concrete_path();
        let answer = sim
            .call(op.method.clone(), &path, Some(&token), op.body(), &[])
            .await;
        assert_served(&op, &answer);
        if !op.documents(answer.status) {
            undocumented.push(format!(
                "{} ({path}) answered {} {}, which it does not document",
                op.label(),
                answer.status,
                answer.body
            ));
        }
    }
    assert!(undocumented.is_empty(), "{}", undocumented.join("\n"));
}

#[tokio::test]
async fn every_operation_needs_exactly_the_scope_it_documents() {
    let sim = common::start().await;
    let doc = document(&sim).await;
    let mut tokens: BTreeMap<String, String> = BTreeMap::new();
    for scope in skillsync_sim::ALL_SCOPES {
        let token = sim.token_with_scope(Some(scope)).await;
        tokens.insert(scope.to_string(), token);
    }
    for op in operations(&doc) {
        let Some(scope) = op.scope() else {
            continue;
        };
        assert!(
            tokens.contains_key(&scope),
            "{} documents unknown scope {scope}",
            op.label()
        );

        let anonymous = sim
            .call(op.method.clone(), &op.concrete_path(), None, op.body(), &[])
            .await;
        assert_served(&op, &anonymous);
        assert_eq!(
            anonymous.status,
            StatusCode::UNAUTHORIZED,
            "{} without a token: {}",
            op.label(),
            anonymous.body
        );

        let other = skillsync_sim::ALL_SCOPES
            .iter()
            .find(|s| **s != scope)
            .expect("more than one scope");
        let wrong = sim
            .call(
                op.method.clone(),
                &op.concrete_path(),
                Some(&tokens[*other]),
                op.body(),
                &[],
            )
            .await;
        assert_eq!(
            wrong.status,
            StatusCode::FORBIDDEN,
            "{} with only scope {other} should be refused for lacking {scope}: {}",
            op.label(),
            wrong.body
        );
        assert_eq!(
            wrong.body["scope"],
            scope.as_str(),
            "{}: the 403 names a different scope than the document",
            op.label()
        );

        let right = sim
            .call(
                op.method.clone(),
                &op.concrete_path(),
                Some(&tokens[&scope]),
                op.body(),
                &[],
            )
            .await;
        assert!(
            right.status != StatusCode::UNAUTHORIZED && right.status != StatusCode::FORBIDDEN,
            "{} with exactly its documented scope {scope} answered {} {}",
            op.label(),
            right.status,
            right.body
        );
    }
}

#[tokio::test]
async fn undocumented_routes_get_the_routers_own_answers() {
    let sim = common::start().await;
    let token = sim.token().await;
    let doc = document(&sim).await;
    let nonsense = "/api/v2/routing/nonsense";
    assert!(doc["paths"].get(nonsense).is_none());
    let answer = sim.get(nonsense, &token).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.body);
    assert_eq!(answer.body["code"], "ROUTE_NOT_FOUND", "{}", answer.body);

    // A documented path with a method it does not document.
    assert!(
        doc["paths"]["/api/v2/routing/queues"]
            .get("delete")
            .is_none()
    );
    let answer = sim
        .call(
            Method::DELETE,
            "/api/v2/routing/queues",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// Follows a `$ref` (if any) to the schema it names.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(pointer) => doc
            .pointer(pointer.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{pointer} does not resolve")),
        None => schema,
    }
}

#[tokio::test]
async fn definition_body_required_fields_are_the_ones_the_handler_enforces() {
    let sim = common::start().await;
    let token = sim.token().await;
    let doc = document(&sim).await;
    let profiles = sim.get("/api/v2/routing/profiles", &token).await;
    let profile_id = profiles.body["entities"][0]["id"]
        .as_str()
        .expect("the tenant has a routing profile")
        .to_string();

    for (n, path) in ["/api/v2/routing/skills", "/api/v2/routing/proficiencies"]
        .into_iter()
        .enumerate()
    {
        let post = &doc["paths"][path]["post"];
        let schema = resolve(
            &doc,
            &post["requestBody"]["content"]["application/json"]["schema"],
        );
        let properties = schema["properties"].as_object().expect("properties");
        let required: Vec<&str> = schema["required"]
            .as_array()
            .expect("a required list")
            .iter()
            .map(|v| v.as_str().expect("a property name"))
            .collect();
        assert!(
            !required.is_empty(),
            "{path}: nothing documented as required"
        );

        let valid = |tag: &str| -> Map<String, Value> {
            let mut body = Map::new();
            body.insert("name".into(), json!(format!("OpenApiCheck_{n}_{tag}")));
            body.insert("locale".into(), json!("en-us"));
            body.insert("active".into(), json!(true));
            body.insert("description".into(), json!("made by the openapi test"));
            body.insert("routingProfileId".into(), json!(profile_id));
            body
        };
        let known = valid("x");
        for property in properties.keys() {
            assert!(
                known.contains_key(property),
                "{path}: the schema documents `{property}`, which this test cannot fill in"
            );
        }
        for field in &required {
            assert!(
                properties.contains_key(*field),
                "{path}: `{field}` is required but not among the schema's properties"
            );
        }

        let created = sim.post(path, &token, Value::Object(valid("all"))).await;
        assert_eq!(created.status, 201, "{path} full body: {}", created.body);
        for header in post["responses"]["201"]["headers"]
            .as_object()
            .into_iter()
            .flat_map(|h| h.keys())
        {
            assert!(
                created.header(header).is_some(),
                "{path}: 201 documents header {header} but did not send it"
            );
        }

        for field in properties.keys() {
            let mut body = valid(field);
            body.remove(field);
            let answer = sim.post(path, &token, Value::Object(body)).await;
            if required.contains(&field.as_str()) {
                assert_eq!(
                    answer.status, 400,
                    "{path} without required `{field}`: {}",
                    answer.body
                );
                assert_eq!(answer.body["code"], "VALIDATION_ERROR");
                let named = answer.body["details"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|d| d["field"] == field.as_str());
                assert!(
                    named,
                    "{path} without `{field}`: the 400 does not name it: {}",
                    answer.body
                );
            } else {
                assert_eq!(
                    answer.status, 201,
                    "{path} without optional `{field}` should be accepted: {}",
                    answer.body
                );
            }
        }
    }
}
