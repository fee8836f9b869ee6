//! The Redis backend over TLS against real `redis-server`s that listen only for TLS, with
//! certificates of a CA made for the test run: the conformance suite on `rediss://`,
//! mutual TLS, verification failures, and a TLS Redis Cluster (`rediss+cluster://`).
//!
//! The conformance checks share one TLS server, as the plain-Redis ones do.

use std::sync::Arc;

use footfall::store::{AnyStore, RedisStore, RedisTls, Store, StoreError, StoreOptions};
use footfall::{SiteId, store::conformance};
use footfall_tests::redis_cluster::RedisCluster;
use footfall_tests::redis_server::RedisServer;
use footfall_tests::tls::{ClientCertificates, TestPki};

use crate::redis_store::Shared;

static TLS_SERVER: Shared<RedisServer> = Shared::new();

/// The shared TLS server; clients are not asked for certificates.
fn tls_server() -> Arc<RedisServer> {
    TLS_SERVER.get(|| {
        RedisServer::builder()
            .tls(&TestPki::generate(), ClientCertificates::NotAsked)
            .start()
    })
}

fn pki(server: &RedisServer) -> &TestPki {
    server.pki().expect("a TLS server has certificates")
}

async fn tls_store() -> (RedisStore, Arc<RedisServer>) {
    let server = tls_server();
    let store = match RedisStore::connect_with(&server.url(), &pki(&server).trust()).await {
        Ok(store) => store,
        Err(error) => panic!("connecting to {} over TLS: {error:?}", server.url()),
    };
    (store, server)
}

footfall::store_conformance!(conformance_tls, tls_store());

fn options(redis_tls: RedisTls) -> StoreOptions {
    StoreOptions { redis_tls }
}

fn site(name: &str) -> SiteId {
    SiteId::new(&format!("{name}-{}", std::process::id())).expect("valid site id")
}

/// The configuration error of a connect that should fail.
async fn config_error(url: &str, redis_tls: RedisTls) -> String {
    match AnyStore::connect_with(url, &options(redis_tls)).await {
        Err(StoreError::Config(message)) => message,
        Err(other) => panic!("{url}: expected a configuration error, got {other:?}"),
        Ok(_) => panic!("{url}: connected, but should not have"),
    }
}

/// A server that requires client certificates takes the one its CA signed, and refuses
/// a client without one with a message that says so.
#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let pki = TestPki::generate();
    let server = RedisServer::builder()
        .tls(&pki, ClientCertificates::Required)
        .start();
    let store = AnyStore::connect_with(&server.url(), &options(pki.trust_with_client_cert()))
        .await
        .unwrap_or_else(|error| panic!("mutual TLS: {error}"));
    assert_eq!(store.backend_name(), "redis");
    conformance::counting_end_to_end(&store, &site("mtls")).await;

    let message = config_error(&server.url(), pki.trust()).await;
    assert!(
        message.contains("refused the TLS handshake") && message.contains("client certificate"),
        "{message}"
    );
    // A client certificate of another CA is refused too.
    let other = TestPki::generate();
    let message = config_error(
        &server.url(),
        RedisTls {
            ca_cert: Some(pki.ca_cert()),
            ..other.trust_with_client_cert()
        },
    )
    .await;
    assert!(message.contains("refused the TLS handshake"), "{message}");
}

/// A server whose certificate no trusted CA signed fails at connect, saying that TLS
/// verification failed: with another CA given, and with the system's roots (no CA given,
/// the default of `AnyStore::connect`). `rediss://` to a plain server times out, and the
/// error asks whether the server speaks TLS.
#[tokio::test]
async fn verification_failures_are_clear() {
    let server = tls_server();
    let other = TestPki::generate();
    for (what, result) in [
        (
            "another CA",
            AnyStore::connect_with(&server.url(), &options(other.trust())).await,
        ),
        ("system roots", AnyStore::connect(&server.url()).await),
    ] {
        let message = match result {
            Err(StoreError::Config(message)) => message,
            other => panic!("{what}: expected a configuration error, got {other:?}"),
        };
        assert!(
            message.contains("TLS verification failed") && message.contains("trusted CA"),
            "{what}: {message}"
        );
    }

    let plain = RedisServer::start();
    let url = plain.url().replacen("redis://", "rediss://", 1);
    let error = AnyStore::connect_with(&url, &options(pki(&server).trust()))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("speaking TLS"), "{error}");
}

/// A three-master Cluster whose nodes speak only TLS (to clients and to each other):
/// counts recorded for sites on different slots read back, and scanning visits every
/// master over TLS.
#[tokio::test]
async fn tls_cluster_records_and_reads() {
    let pki = TestPki::generate();
    let cluster = RedisCluster::start_tls(3, 0, &pki);
    let store = AnyStore::connect_with(&cluster.url(), &options(pki.trust()))
        .await
        .unwrap_or_else(|error| panic!("connecting to {}: {error}", cluster.url()));
    assert_eq!(store.backend_name(), "redis-cluster");
    store.ping().await.expect("PING over TLS");
    for name in ["tls-cluster-a", "tls-cluster-b", "tls-cluster-c"] {
        conformance::counting_end_to_end(&store, &site(name)).await;
    }
    conformance::scan_and_restore_round_trip(&store, &site("tls-cluster-scan")).await;

    let other = TestPki::generate();
    let message = config_error(&cluster.url(), other.trust()).await;
    assert!(
        message.contains("TLS verification failed") && message.contains("trusted CA"),
        "{message}"
    );
}
