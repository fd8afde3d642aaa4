//! Holds `openapi.json` to the router: the document lists exactly the routes served, names
//! every path parameter, resolves every `$ref`, and asks only for scopes the tenant knows.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{routes, sim_routes};
use crate::auth::ALL_SCOPES;

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

fn document() -> Value {
    serde_json::from_str(crate::OPENAPI_JSON).expect("openapi.json is valid JSON")
}

/// Every operation in the document as (METHOD, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let paths = doc["paths"].as_object().expect("`paths` is an object");
    let mut found = Vec::new();
    for (path, item) in paths {
        let item = item.as_object().expect("a path item is an object");
        for (key, operation) in item {
            if METHODS.contains(&key.as_str()) {
                found.push((key.to_uppercase(), path.clone(), operation.clone()));
            }
        }
    }
    found
}

/// Every route the router serves, as (METHOD, path template).
fn served() -> BTreeSet<(String, String)> {
    routes()
        .into_iter()
        .chain(sim_routes())
        .map(|(method, path, _)| (method.to_string(), path.to_string()))
        .chain([
            ("GET".to_string(), "/openapi.json".to_string()),
            ("GET".to_string(), "/".to_string()),
        ])
        .collect()
}

fn show(set: &BTreeSet<&(String, String)>) -> String {
    set.iter()
        .map(|(m, p)| format!("  {m} {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn openapi_lists_exactly_the_served_routes() {
    let doc = document();
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let served = served();
    let undocumented: BTreeSet<_> = served.difference(&documented).collect();
    let unserved: BTreeSet<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "openapi.json and the router disagree.\n\
         served by routes()/sim_routes() but missing from openapi.json:\n{}\n\
         in openapi.json but not served by the router:\n{}",
        show(&undocumented),
        show(&unserved),
    );
}

#[test]
fn openapi_is_version_3_1_with_unique_operation_ids() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let mut seen = BTreeSet::new();
    for (method, path, operation) in operations(&doc) {
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(
            seen.insert(id.to_string()),
            "operationId {id} is used twice"
        );
        let responses = operation["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} has no responses"));
        assert!(
            responses.keys().any(|code| code.starts_with('2')),
            "{method} {path} documents no success response"
        );
    }
}

/// The parameters that apply to an operation: the path item's and its own, `$ref`s resolved.
fn parameters(doc: &Value, path: &str, operation: &Value) -> Vec<Value> {
    let shared = doc["paths"][path]["parameters"].as_array().cloned();
    let own = operation["parameters"].as_array().cloned();
    shared
        .into_iter()
        .flatten()
        .chain(own.into_iter().flatten())
        .map(|p| match p["$ref"].as_str() {
            Some(pointer) => resolve(doc, pointer)
                .unwrap_or_else(|| panic!("{pointer} does not resolve"))
                .clone(),
            None => p,
        })
        .collect()
}

/// Whether a path is behind the gateway: the Admin API v2 or the CXone dialect.
fn is_api(path: &str) -> bool {
    path.starts_with("/api/v2/") || path.starts_with(crate::cxone::BASE_PATH)
}

fn resolve<'a>(doc: &'a Value, pointer: &str) -> Option<&'a Value> {
    doc.pointer(pointer.strip_prefix('#')?)
}

#[test]
fn openapi_declares_every_path_parameter() {
    let doc = document();
    for (method, path, operation) in operations(&doc) {
        let templated: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        let declared: BTreeSet<String> = parameters(&doc, &path, &operation)
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| {
                assert_eq!(
                    p["required"], true,
                    "{method} {path}: path parameters are required"
                );
                p["name"].as_str().unwrap_or_default().to_string()
            })
            .collect();
        let declared: BTreeSet<&str> = declared.iter().map(String::as_str).collect();
        assert_eq!(
            templated, declared,
            "{method} {path}: path parameters in the template vs declared"
        );
    }
}

#[test]
fn openapi_refs_all_resolve() {
    fn walk(doc: &Value, value: &Value, at: &str, broken: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    if key == "$ref" {
                        let target = child.as_str().unwrap_or_default();
                        if resolve(doc, target).is_none() {
                            broken.push(format!("{at}: {target}"));
                        }
                    } else {
                        walk(doc, child, &format!("{at}/{key}"), broken);
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(doc, child, &format!("{at}/{i}"), broken);
                }
            }
            _ => {}
        }
    }
    let doc = document();
    let mut broken = Vec::new();
    walk(&doc, &doc, "#", &mut broken);
    assert!(
        broken.is_empty(),
        "unresolved $refs:\n{}",
        broken.join("\n")
    );
}

#[test]
fn openapi_security_names_the_tenants_scopes() {
    let doc = document();
    let scheme = &doc["components"]["securitySchemes"]["oauth2"];
    assert_eq!(scheme["type"], "oauth2");
    let flow = &scheme["flows"]["clientCredentials"];
    assert_eq!(flow["tokenUrl"], "/api/v2/oauth/token");
    let declared: BTreeSet<&str> = flow["scopes"]
        .as_object()
        .expect("clientCredentials lists its scopes")
        .keys()
        .map(String::as_str)
        .collect();
    let known: BTreeSet<&str> = ALL_SCOPES.iter().copied().collect();
    assert_eq!(declared, known, "the scheme's scopes vs auth::ALL_SCOPES");
    for (method, path, operation) in operations(&doc) {
        let security = operation["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} does not say what security it needs"));
        let needs_token = is_api(&path) && path != "/api/v2/oauth/token";
        if !needs_token {
            assert!(security.is_empty(), "{method} {path} takes no token");
            continue;
        }
        let [requirement] = security.as_slice() else {
            panic!("{method} {path} should name exactly one security requirement");
        };
        let scopes = requirement["oauth2"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} should use the oauth2 scheme"));
        let [scope] = scopes.as_slice() else {
            panic!("{method} {path} should need exactly one scope, not {scopes:?}");
        };
        let scope = scope.as_str().unwrap_or_default();
        assert!(
            known.contains(scope),
            "{method} {path} needs unknown scope {scope}"
        );
        for code in ["401", "403", "429"] {
            assert!(
                operation["responses"].get(code).is_some(),
                "{method} {path} behind the gateway should document {code}"
            );
        }
    }
}

/// The member names of a served JSON object.
fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .expect("a JSON object")
        .keys()
        .cloned()
        .collect()
}

/// A schema's `required` list and its `properties`, which must agree.
fn schema_members(doc: &Value, name: &str) -> BTreeSet<String> {
    let schema = &doc["components"]["schemas"][name];
    let required: BTreeSet<String> = schema["required"]
        .as_array()
        .unwrap_or_else(|| panic!("{name} lists what is required"))
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        required,
        keys(&schema["properties"]),
        "{name}: required vs properties"
    );
    required
}

#[test]
fn openapi_knobs_and_stats_list_exactly_the_served_members() {
    let doc = document();
    let knobs = serde_json::to_value(crate::config::Knobs::default()).expect("knobs serialise");
    assert_eq!(
        schema_members(&doc, "Knobs"),
        keys(&knobs),
        "GET /sim/config vs the Knobs schema"
    );
    let patch = &doc["components"]["schemas"]["KnobsPatch"]["properties"];
    assert_eq!(
        keys(patch),
        keys(&knobs),
        "PATCH /sim/config vs the KnobsPatch schema"
    );
    let mut stats =
        serde_json::to_value(crate::stats::Stats::default().report()).expect("stats serialise");
    // Added by the handler from the routing cache.
    stats["cacheSettledInSeconds"] = 0.0.into();
    assert_eq!(
        schema_members(&doc, "StatsReport"),
        keys(&stats),
        "GET /sim/stats vs the StatsReport schema"
    );
}

/// A response object, its `$ref` followed.
fn response<'a>(doc: &'a Value, response: &'a Value) -> &'a Value {
    match response["$ref"].as_str() {
        Some(pointer) => resolve(doc, pointer).unwrap_or_else(|| panic!("{pointer} unresolved")),
        None => response,
    }
}

/// Whether a schema is the error body: `Error` itself or an `allOf` built on it.
fn is_error_body(doc: &Value, schema: &Value) -> bool {
    match schema["$ref"].as_str() {
        Some("#/components/schemas/Error") => true,
        Some(pointer) => resolve(doc, pointer).is_some_and(|s| is_error_body(doc, s)),
        None => schema["allOf"]
            .as_array()
            .is_some_and(|parts| parts.iter().any(|s| is_error_body(doc, s))),
    }
}

#[test]
fn openapi_documents_every_error_with_the_json_error_body() {
    let doc = document();
    for (method, path, operation) in operations(&doc) {
        if !is_api(&path) {
            continue;
        }
        for (code, answer) in operation["responses"].as_object().expect("responses") {
            if code.starts_with('2') {
                continue;
            }
            let schema = &response(&doc, answer)["content"]["application/json"]["schema"];
            assert!(
                is_error_body(&doc, schema),
                "{method} {path} {code} should answer the JSON error body (SPEC 1)"
            );
        }
        // An id that is not UTF-8 once percent-decoded is refused by `PathParam` with a 400.
        if path.contains('{') {
            assert!(
                operation["responses"].get("400").is_some(),
                "{method} {path} takes an id, so it can answer 400"
            );
        }
    }
}

#[test]
fn openapi_query_parameters_allow_the_empty_value_the_handlers_read_as_absent() {
    let doc = document();
    for (method, path, operation) in operations(&doc) {
        for parameter in parameters(&doc, &path, &operation) {
            if parameter["in"] != "query" {
                continue;
            }
            // Empty is absent, and a required parameter that is absent is a 400: the document
            // must then not call the empty value valid.
            let allowed = parameter["required"] != true;
            assert_eq!(
                parameter["allowEmptyValue"] == true,
                allowed,
                "{method} {path}: `{}` is read by `Params::get`, where empty means absent",
                parameter["name"]
            );
        }
    }
}

#[test]
fn cxone_routes_live_under_the_dialects_base_path() {
    let cxone: Vec<String> = routes()
        .into_iter()
        .map(|(_, path, _)| path.to_string())
        .filter(|path| path.starts_with("/incontactapi/"))
        .collect();
    assert_eq!(cxone.len(), 14, "{cxone:?}");
    for path in cxone {
        assert!(
            path.starts_with(&format!("{}/", crate::cxone::BASE_PATH)),
            "{path}"
        );
    }
}
