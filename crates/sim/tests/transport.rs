//! Transport: HTTP/1.1 and HTTP/2 on one port, TLS with a minted CA (HTTP/2 via ALPN), and
//! graceful shutdown.

mod common;

use std::time::{Duration, Instant};

use reqwest::{Certificate, Client, Version};
use serde_json::json;

const SKILLS: &str = "/api/v2/routing/skills";

#[tokio::test]
async fn http2_prior_knowledge_over_plain_http_works() {
    let sim = common::start().await;
    let token = sim.token().await;
    let h2 = Client::builder().http2_prior_knowledge().build().unwrap();
    let response = h2
        .get(sim.url(SKILLS))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["total"].as_u64().unwrap() > 0, "{body}");
    // Writes too, and the inspection routes.
    let response = h2
        .post(sim.url("/sim/clock/advance"))
        .json(&json!({ "by": "1s" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (response.version(), response.status().as_u16()),
        (Version::HTTP_2, 200)
    );
}

#[tokio::test]
async fn a_dropped_request_over_http2_gets_no_answer_and_the_connection_serves_on() {
    let sim = common::start().await;
    let token = sim.token().await;
    let h2 = Client::builder().http2_prior_knowledge().build().unwrap();
    let get = || h2.get(sim.url(SKILLS)).bearer_auth(&token).send();
    assert_eq!(get().await.unwrap().version(), Version::HTTP_2);
    sim.set_knobs(json!({ "dropRate": 1.0 })).await;
    let error = get().await.expect_err("dropped");
    assert!(error.status().is_none(), "{error:?}");
    sim.set_knobs(json!({ "dropRate": 0.0 })).await;
    let response = get().await.unwrap();
    assert_eq!(
        (response.version(), response.status().as_u16()),
        (Version::HTTP_2, 200)
    );
    assert!(sim.stats().await["droppedConnections"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn http1_is_served_on_the_same_port() {
    let sim = common::start().await;
    let token = sim.token().await;
    let h1 = Client::builder().http1_only().build().unwrap();
    let response = h1
        .get(sim.url(SKILLS))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn tls_with_the_written_ca_trusted_negotiates_http2_via_alpn() {
    let sim = common::start_tls().await;
    assert!(sim.base.starts_with("https://127.0.0.1:"), "{}", sim.base);
    let pem = std::fs::read(sim.ca_file.as_ref().expect("a TLS simulator names its CA")).unwrap();
    // Trust nothing but the written CA: it alone makes the connection work.
    let client = Client::builder()
        .tls_certs_only([Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    let token = sim.token().await;
    let response = client
        .get(sim.url(SKILLS))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_2, "ALPN offers h2");

    // The certificate also names localhost.
    let localhost = sim.base.replace("127.0.0.1", "localhost");
    let response = client
        .get(format!("{localhost}{SKILLS}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // A client that speaks only HTTP/1.1 is served over TLS as well.
    let h1 = Client::builder()
        .tls_certs_only([Certificate::from_pem(&pem).unwrap()])
        .http1_only()
        .build()
        .unwrap();
    let response = h1
        .get(sim.url(SKILLS))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (response.version(), response.status().as_u16()),
        (Version::HTTP_11, 200)
    );
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_fails() {
    let sim = common::start_tls().await;
    let clients = [
        Client::builder().build().unwrap(),
        Client::builder().tls_certs_only([]).build().unwrap(),
    ];
    for client in clients {
        let error = client
            .get(sim.url("/sim/stats"))
            .send()
            .await
            .expect_err("an untrusted certificate must not be accepted");
        assert!(error.status().is_none(), "{error:?}");
        assert!(error.is_connect(), "{error:?}");
    }
    // Plain HTTP to the TLS port gets no answer either.
    let plain = sim.base.replace("https://", "http://");
    let answer = Client::new().get(format!("{plain}/sim/stats")).send().await;
    assert!(
        answer.as_ref().map_or(true, |r| !r.status().is_success()),
        "{answer:?}"
    );
}

#[tokio::test]
async fn the_ca_file_is_pem() {
    let sim = common::start_tls().await;
    let text = std::fs::read_to_string(sim.ca_file.as_ref().unwrap()).unwrap();
    assert!(text.starts_with("-----BEGIN CERTIFICATE-----"), "{text}");
    assert!(
        text.trim_end().ends_with("-----END CERTIFICATE-----"),
        "{text}"
    );
    assert_eq!(text.matches("BEGIN CERTIFICATE").count(), 1, "{text}");
    assert!(
        !text.contains("PRIVATE KEY"),
        "the CA's key must not be written"
    );
    Certificate::from_pem(text.as_bytes()).unwrap();
}

/// Polls a port with fresh connections until nothing answers there.
async fn wait_until_closed(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let client = Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        if client.get(url).send().await.is_err() {
            return;
        }
        assert!(Instant::now() < deadline, "{url} still answers");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn after_the_simulator_is_dropped_its_port_stops_answering() {
    let sim = common::start().await;
    let url = sim.url("/sim/stats");
    assert_eq!(Client::new().get(&url).send().await.unwrap().status(), 200);
    drop(sim);
    wait_until_closed(&url).await;
}

/// Sends a request over a raw connection and returns the connection to read the answer from.
async fn send_raw(base: &str, path: &str, token: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

/// Reads a raw connection to its end and returns the status line.
async fn status_line(mut stream: tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.lines().next().unwrap_or("").to_string()
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish() {
    let sim = common::start().await;
    let token = sim.token().await;
    sim.set_knobs(json!({ "maxInFlight": 1, "latency": "1s" }))
        .await;
    let url = sim.url(SKILLS);
    let mut in_flight = None;
    for _ in 0..3 {
        let connection = send_raw(&sim.base, SKILLS, &token).await;
        // The in-flight cap tells when that request is being handled: a second request of the
        // same client is then refused at once.
        if sim.get(SKILLS, &token).await.status == 429 {
            in_flight = Some(connection);
            break;
        }
        // The probe got there first and the raw request was refused; try again.
        assert!(status_line(connection).await.contains(" 429 "));
    }
    let connection = in_flight.expect("a request was seen in flight");
    drop(sim);
    let status = status_line(connection).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status:?}");
    wait_until_closed(&url).await;
}
