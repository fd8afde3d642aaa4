//! The service's HTTP surface (SPEC §4). Bound to loopback unless `[serve] listen` says
//! otherwise; bodies are capped (413); events are refused while stopping (503) and when the
//! queue is full (429 with `Retry-After`). The status page (`/`, `/runs/{id}`) asks for
//! `[serve] status_token` when one is set; health, readiness and metrics stay open, and events
//! keep their own signature.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use skillsync_store::NewEvent;

use super::Service;
use super::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// Seconds a client is asked to wait when the queue is full or the service stopping.
const RETRY_AFTER_SECS: u64 = 5;

/// Serves until the task is aborted.
pub async fn serve(service: Arc<Service>, listener: tokio::net::TcpListener) {
    let max_body = service.config.serve.max_body_bytes;
    let status_page = Router::new()
        .route("/", get(super::status_page::index))
        .route("/runs/{id}", get(super::status_page::run_page))
        .route_layer(axum::middleware::from_fn_with_state(
            service.clone(),
            status_page_auth,
        ));
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/events", post(post_events))
        .route("/v1/events/{id}", get(get_event))
        .merge(status_page)
        .layer(DefaultBodyLimit::max(max_body))
        // A client that sends its request slowly, or stops halfway, would hold a connection
        // (and a task) for as long as it likes.
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            service.config.serve.request_timeout,
        ))
        .with_state(service.clone());
    // Answers are small: without TCP_NODELAY each one can wait for the client's delayed ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // The status page's API budget samples the client's counters while the surface serves.
    tokio::select! {
        result = axum::serve(listener, app) => {
            if let Err(error) = result {
                tracing::error!(error = %error, "the HTTP server stopped");
            }
        }
        _ = super::status_page::sample_api(&service) => {}
    }
}

/// The status page's lock: with `[serve] status_token` set, a request must carry it (bearer,
/// or basic auth's password); without, it is open to whoever reaches the listener (loopback
/// by default).
async fn status_page_auth(
    State(service): State<Arc<Service>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &service.status_token else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if super::status_page::token_matches(token.expose(), given) {
        return next.run(request).await;
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        "the status page needs [serve] status_token: Authorization: Bearer <token>, or basic auth with it as the password\n",
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Basic realm="skillsync status", charset="UTF-8""#),
    );
    response
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

/// Ready when the store answers and a token can be had from the tenant.
async fn readyz(State(service): State<Arc<Service>>) -> Response {
    let store = service.queue.event_stats().await;
    let token = service.api.token_ready().await;
    match (store, token) {
        (Ok(_), Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        (store, token) => {
            let mut why = Vec::new();
            if let Err(e) = store {
                why.push(format!("store: {}", skillsync_engine::explain(&e)));
            }
            if let Err(e) = token {
                why.push(format!("tenant token: {}", skillsync_engine::explain(&e)));
            }
            error(StatusCode::SERVICE_UNAVAILABLE, why.join("; "))
        }
    }
}

async fn metrics(State(service): State<Arc<Service>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        super::metrics::render(&service).await,
    )
        .into_response()
}

async fn post_events(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let refuse = |status: StatusCode, message: String| {
        service.metrics.refused(status.as_u16());
        tracing::info!(status = status.as_u16(), reason = %message, "event request refused");
        error(status, message)
    };
    if service.is_stopping() {
        let mut response = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service is stopping".into(),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, RETRY_AFTER_SECS.into());
        return response;
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            return refuse(
                rejection.status(),
                format!(
                    "{} (at most {} bytes)",
                    rejection.body_text(),
                    service.config.serve.max_body_bytes
                ),
            );
        }
    };
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = jiff::Timestamp::now();
    if let Err(refused) = signature::verify(
        service.webhook_secret.expose().as_bytes(),
        text(TIMESTAMP_HEADER),
        text(SIGNATURE_HEADER),
        &body,
        now,
        service.config.serve.replay_window,
    ) {
        return refuse(StatusCode::UNAUTHORIZED, refused.to_string());
    }
    let events = match skillsync_core::parse_events(&body, now) {
        Ok(events) => events,
        Err(problems) => {
            service.metrics.refused(400);
            let first = problems.first().map(|p| p.to_string()).unwrap_or_default();
            tracing::info!(status = 400, reason = %first, "event request refused");
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({
                    "error": format!("the body is not valid: {first}"),
                    "problems": problems,
                })),
            )
                .into_response();
        }
    };
    match service.intake.queued(service.queue.as_ref()).await {
        Ok(queued) if queued >= service.config.serve.max_queued => {
            let mut response = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "{queued} events are waiting, the most [serve] max_queued allows; send again later"
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, RETRY_AFTER_SECS.into());
            return response;
        }
        _ => {}
    }
    let stored: Vec<NewEvent> = events
        .iter()
        .map(|event| NewEvent {
            id: event.id.to_string(),
            lane: service.desired.lane_of(event),
            employee_id: event.employee_id.to_string(),
            occurred_at: event.occurred_at,
            received_at: now,
            body: event.to_json(),
        })
        .collect();
    let ids: Vec<String> = stored.iter().map(|e| e.id.clone()).collect();
    match service.intake.store(stored).await {
        Ok(new) => {
            let repeated: Vec<&String> = ids
                .iter()
                .zip(&new)
                .filter(|(_, new)| !**new)
                .map(|(id, _)| id)
                .collect();
            for (id, new) in ids.iter().zip(&new) {
                tracing::info!(event_id = %id, repeated = !new, "event accepted");
            }
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({ "accepted": ids, "repeated": repeated })),
            )
                .into_response()
        }
        Err(why) => {
            let mut response = refuse(StatusCode::SERVICE_UNAVAILABLE, why);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, RETRY_AFTER_SECS.into());
            response
        }
    }
}

/// What became of an event: `queued`, `applied`, `rejected` (with why), `superseded`.
async fn get_event(State(service): State<Arc<Service>>, Path(id): Path<String>) -> Response {
    match service.queue.event(&id).await {
        Ok(Some(record)) => {
            let event = super::desired::stored_event(&record.body);
            axum::Json(json!({
                "id": record.id,
                "state": record.state.as_str(),
                "reason": record.reason,
                "type": event.as_ref().map(|e| e.type_name()),
                "employeeId": record.employee_id,
                "lane": record.lane.as_str(),
                "occurredAt": record.occurred_at,
                "receivedAt": record.received_at,
                "settledAt": record.settled_at,
                "run": record.run.map(|r| r.0),
                "attempts": record.attempts,
            }))
            .into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no event {id}")),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the store: {}", skillsync_engine::explain(&e)),
        ),
    }
}
