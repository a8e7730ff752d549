//! TLS end to end with certificates made in the test (a CA, a server certificate for
//! 127.0.0.1 and localhost, a client certificate): a TLS client that trusts the CA is served, a
//! plain-text client is not; with client certificates required, a client without one is
//! refused; the CLI speaks https with --ca-cert.

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use crate::support::api::*;
use dipledger::api::server::{ServerOptions, TlsOptions};

/// PEM texts of a test PKI.
struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "dipledger test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server.signed_by(&server_key, &ca_cert, &ca_key).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client
        .distinguished_name
        .push(DnType::CommonName, "embassy-tripoli");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client.signed_by(&client_key, &ca_cert, &ca_key).unwrap();
    Pki {
        ca: ca_cert.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    }
}

fn tls_options(pki: &Pki, require_client_cert: bool) -> ServerOptions {
    ServerOptions {
        tls: Some(TlsOptions {
            cert_pem: pki.server_cert.clone().into_bytes(),
            key_pem: pki.server_key.clone().into_bytes(),
            client_ca_pem: require_client_cert.then(|| pki.ca.clone().into_bytes()),
            require_client_cert,
            reload_from: None,
        }),
        ..ServerOptions::default()
    }
}

/// A health check over a channel to `uri` with `tls` (None: plain text); the error as text.
async fn health_check(uri: String, tls: Option<ClientTlsConfig>) -> Result<(), String> {
    let mut endpoint = Channel::from_shared(uri)
        .unwrap()
        .connect_timeout(TIMEOUT)
        .timeout(TIMEOUT);
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).map_err(|error| error.to_string())?;
    }
    let channel = endpoint.connect().await.map_err(|error| format!("{error:?}"))?;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|_| ())
        .map_err(|status| format!("{status:?}"))
}

fn https(harness: &Harness) -> String {
    format!("https://127.0.0.1:{}", harness.server.local_addr().port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_server_serves_clients_that_trust_its_ca_and_refuses_plain_text() {
    let pki = pki();
    let harness = Harness::start_with(tls_options(&pki, false)).await;
    let trusting = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&pki.ca));
    health_check(https(&harness), Some(trusting))
        .await
        .expect("served over TLS");
    let plain = format!("http://127.0.0.1:{}", harness.server.local_addr().port());
    assert!(
        health_check(plain, None).await.is_err(),
        "plain text is not served"
    );
    let stranger = pki_of_another_ca();
    let distrusting = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&stranger));
    assert!(
        health_check(https(&harness), Some(distrusting)).await.is_err(),
        "a client that does not trust the server's CA does not connect"
    );

    // The CLI: https needs --ca-cert; with it, the call reaches the server.
    let ca_file = harness.dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca).unwrap();
    let server = https(&harness);
    let run = |extra: Vec<String>| {
        let mut args = vec![
            "relation".to_owned(),
            "LBY".into(),
            "FRA".into(),
            "--server".into(),
            server.clone(),
        ];
        args.extend(extra);
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_dipledger"))
                .args(&args)
                .env_remove("DIPLEDGER_CA_CERT")
                .output()
                .unwrap()
        })
    };
    let without = run(Vec::new()).await.unwrap();
    assert!(String::from_utf8_lossy(&without.stderr).contains("--ca-cert"));
    let with = run(vec!["--ca-cert".into(), ca_file.display().to_string()])
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&with.stderr);
    assert!(
        stderr.contains("NOT_FOUND") && stderr.contains("LBY"),
        "the server answered: {stderr}"
    );
}

fn pki_of_another_ca() -> String {
    let key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.self_signed(&key).unwrap().pem()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_client_certificates_refuse_clients_without_one() {
    let pki = pki();
    let harness = Harness::start_with(tls_options(&pki, true)).await;
    let trusting = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&pki.ca));
    assert!(
        health_check(https(&harness), Some(trusting.clone()))
            .await
            .is_err(),
        "no client certificate: refused"
    );
    let identified = trusting.identity(Identity::from_pem(&pki.client_cert, &pki.client_key));
    health_check(https(&harness), Some(identified))
        .await
        .expect("a client certificate from the CA is served");
}

/// A client CA: its certificate and key.
fn client_ca() -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "dipledger client CA");
    (ca.self_signed(&key).unwrap(), key)
}

/// A client certificate from `ca` naming `common_name`: (certificate PEM, key PEM).
fn client_cert(ca: &(rcgen::Certificate, KeyPair), common_name: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client.distinguished_name.push(DnType::CommonName, common_name);
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = client.signed_by(&key, &ca.0, &ca.1).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_naming_a_principal_authenticates_as_it_until_its_tokens_are_revoked() {
    use dipledger::api::pb::command_service_client::CommandServiceClient;
    use dipledger::auth::tokens;
    use dipledger::auth::Role;
    use dipledger::log::{Clock, SystemClock};
    let pki = pki();
    let ca = client_ca();
    let (tripoli_cert, tripoli_key) = client_cert(&ca, "embassy-tripoli");
    let (stranger_cert, stranger_key) = client_cert(&ca, "stranger");
    let dir = tempfile::tempdir().unwrap();
    let now = SystemClock.now();
    let (entry, _secret) = tokens::update(dir.path(), |file| {
        file.create("embassy-tripoli", &[Role::Recorder], None, now)
    })
    .unwrap();
    let mut options = tls_options(&pki, true);
    options.tls.as_mut().unwrap().client_ca_pem = Some(ca.0.pem().into_bytes());
    let harness = Harness::start_in(dir, options).await;
    let channel = |cert: &str, key: &str| {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&pki.ca))
            .identity(Identity::from_pem(cert, key));
        Channel::from_shared(https(&harness))
            .unwrap()
            .tls_config(tls)
            .unwrap()
    };
    let tripoli = channel(&tripoli_cert, &tripoli_key).connect().await.unwrap();
    let mut client = CommandServiceClient::new(tripoli);
    let recorded = client
        .register_source(crate::support::commands::register_source("A report"))
        .await
        .unwrap()
        .into_inner();
    let stream_id = recorded.result.unwrap().stream_id;
    let stored = harness
        .log
        .read_stream(&stream_id, 1, dipledger::log::Direction::Forwards, 1)
        .unwrap();
    assert_eq!(
        stored[0].envelope().recorded_by,
        "embassy-tripoli",
        "no token sent: the certificate's CN"
    );
    // A certificate from the CA whose CN names no principal with a token: UNAUTHENTICATED.
    let stranger = channel(&stranger_cert, &stranger_key).connect().await.unwrap();
    let refused = CommandServiceClient::new(stranger)
        .register_source(crate::support::commands::register_source("A report"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert!(refused.message().contains("\"stranger\""), "{refused:?}");
    // Revoking the principal's last token shuts its certificate out too, within the reload.
    tokens::update(harness.dir.path(), |file| {
        file.revoke(&entry.id, SystemClock.now())
    })
    .unwrap();
    let deadline = std::time::Instant::now()
        + dipledger::auth::tokens::TOKEN_RELOAD_INTERVAL
        + std::time::Duration::from_secs(5);
    loop {
        match client
            .register_source(crate::support::commands::register_source("A report"))
            .await
        {
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                assert!(status.message().contains("embassy-tripoli"), "{status:?}");
                break;
            }
            other => assert!(std::time::Instant::now() < deadline, "still accepted: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reloads_its_certificate_on_sighup_and_keeps_it_when_the_new_one_does_not_load() {
    let (first, second) = (pki(), pki());
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    std::fs::write(&cert, &first.server_cert).unwrap();
    std::fs::write(&key, &first.server_key).unwrap();
    let mut served = crate::cli_serve::Served::start(
        dir.path(),
        &[
            "--data-dir",
            "data",
            "--tls-cert",
            "server.pem",
            "--tls-key",
            "server.key",
        ],
        &[],
    );
    let uri = served.uri.replace("http://", "https://");
    let trusting = |pki: &Pki| Some(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&pki.ca)));
    health_check(uri.clone(), trusting(&first))
        .await
        .expect("served with the first certificate");
    assert!(health_check(uri.clone(), trusting(&second)).await.is_err());
    // New files, then SIGHUP: new handshakes get the second certificate.
    std::fs::write(&cert, &second.server_cert).unwrap();
    std::fs::write(&key, &second.server_key).unwrap();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(served.pid() as libc::pid_t, libc::SIGHUP) };
    served.wait_for_line("TLS certificate reloaded");
    health_check(uri.clone(), trusting(&second))
        .await
        .expect("served with the second certificate");
    assert!(
        health_check(uri.clone(), trusting(&first)).await.is_err(),
        "the first is gone"
    );
    // A certificate file that does not load: refused, and the second stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    unsafe { libc::kill(served.pid() as libc::pid_t, libc::SIGHUP) };
    served.wait_for_line("NOT reloaded");
    health_check(uri, trusting(&second))
        .await
        .expect("still the second certificate");
    served.stop();
}
