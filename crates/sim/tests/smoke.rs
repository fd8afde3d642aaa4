mod common;

#[tokio::test]
async fn harness_reaches_the_simulator() {
    let sim = common::start().await;
    let token = sim.token().await;
    let answer = sim.get("/api/v2/routing/skills", &token).await;
    assert_eq!(answer.status, 200);
}
