//! `METRICS_ADDR`: Prometheus metrics at `/metrics` on an address of their
//! own, never the API's.
//!
//! The metrics are recorded where their events happen, through the
//! `metrics` facade (a no-op until a recorder is installed): requests in
//! the HTTP adapter's middleware, logins in the use case, the hashing
//! slots and queue in the password adapter, store errors in
//! [`metered_store`](crate::metered_store). [`serve_metrics`] installs the
//! Prometheus recorder (`metrics-exporter-prometheus`, without its hyper
//! listener) and renders it from a one-worker actix-web server.

use std::sync::atomic::{AtomicBool, Ordering};

/// Every metric Portcullis records: name, type and help text (the README's
/// table says the same).
pub const METRICS: [(&str, &str, &str); 7] = [
    (
        portcullis_http_actix::REQUEST_DURATION,
        "histogram",
        "HTTP requests by route pattern, method and status: latency in seconds (its _count counts requests)",
    ),
    (
        "portcullis_logins_total",
        "counter",
        "Logins by outcome: ok, bad_credentials, not_verified, locked, busy, error",
    ),
    (
        "portcullis_hashing_slots",
        "gauge",
        "Password hashing jobs that may run at once",
    ),
    (
        "portcullis_hashing_slots_busy",
        "gauge",
        "Password hashing slots held by a job now",
    ),
    (
        "portcullis_hashing_queue_length",
        "gauge",
        "Requests waiting for a password hashing slot now",
    ),
    (
        "portcullis_requests_shed_total",
        "counter",
        "Requests refused rather than served, by reason: rate_limited, login_locked, hashing_queue_full, hashing_queue_timeout, client_gone",
    ),
    (
        crate::metered_store::STORE_ERRORS,
        "counter",
        "Store calls that failed (store unavailable), by operation",
    ),
];

/// Whether a recorder was installed by [`serve_metrics`]: the request
/// middleware and the store's counting wrapper are installed only then.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether this process records metrics (`METRICS_ADDR` is served).
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// The histogram's buckets, in seconds (Prometheus' default ones).
#[cfg(feature = "cli")]
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often the recorder's histogram samples are folded in (its upkeep),
/// between scrapes.
#[cfg(feature = "cli")]
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the process's Prometheus recorder and serves it as text at
/// `GET /metrics` on `listener` (bound to `METRICS_ADDR`): one worker, no
/// other route. Call it before [`start`](crate::start) so that the
/// service's gauges and counters land in it; the server runs when awaited
/// (or spawned) and stops on SIGTERM/SIGINT as the API's does.
///
/// # Errors
/// [`StartError::Metrics`](crate::StartError::Metrics) when a recorder is
/// installed already or the listener cannot be served.
#[cfg(feature = "cli")]
pub fn serve_metrics(
    listener: std::net::TcpListener,
) -> Result<actix_web::dev::Server, crate::StartError> {
    use actix_web::{App, HttpResponse, HttpServer, web};
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

    let failed = |e: &dyn std::fmt::Display| crate::StartError::Metrics(e.to_string());
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(portcullis_http_actix::REQUEST_DURATION.to_owned()),
            &BUCKETS,
        )
        .map_err(|e| failed(&e))?
        .install_recorder()
        .map_err(|e| failed(&e))?;
    for (name, kind, help) in METRICS {
        match kind {
            "histogram" => {
                metrics::describe_histogram!(name, metrics::Unit::Seconds, help);
            }
            "gauge" => metrics::describe_gauge!(name, help),
            _ => metrics::describe_counter!(name, help),
        }
    }
    ENABLED.store(true, Ordering::Release);

    let upkeep = handle.clone();
    actix_web::rt::spawn(async move {
        let mut every = actix_web::rt::time::interval(UPKEEP_INTERVAL);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });

    async fn render(handle: web::Data<PrometheusHandle>) -> HttpResponse {
        HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(handle.render())
    }
    let handle = web::Data::new(handle);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(handle.clone())
            .route("/metrics", web::get().to(render))
    })
    .workers(1)
    .shutdown_timeout(1)
    .listen(listener)
    .map_err(|e| failed(&e))?
    .run();
    Ok(server)
}
