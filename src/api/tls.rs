//! The server's TLS, with rustls directly instead of tonic's built-in acceptor, for one reason:
//! the certificate and key can be replaced while the server runs (`dipledger serve` re-reads
//! `--tls-cert` and `--tls-key` on SIGHUP). New handshakes use the new certificate; open
//! connections keep theirs. A certificate that does not load (unreadable file, no certificate,
//! a key that does not parse) is refused and the old one stays.
//!
//! The acceptor accepts TCP connections on the listener (TCP_NODELAY on each), runs each
//! handshake in its own task, bounded by [`HANDSHAKE_TIMEOUT`] and at most
//! [`MAX_PENDING_HANDSHAKES`] at once, and hands tonic the finished
//! TLS streams (tonic reads the client's certificate chain from them, for `auth::layer`). A
//! failed handshake (a plain-text client, a client certificate the `--client-ca` does not
//! verify) is dropped, as tonic's own acceptor does.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

/// Longest time a client may take to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; a connection beyond is closed at once (a flood of clients
/// that never finish their handshake costs at most this many tasks for HANDSHAKE_TIMEOUT).
pub const MAX_PENDING_HANDSHAKES: usize = 1_024;
/// How long the accept loop waits after `accept` fails (out of file descriptors, say) before
/// trying again, so a persistent failure does not spin a core.
pub const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);
/// Finished handshakes waiting for tonic to take them.
const ACCEPTED_QUEUE: usize = 64;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain and its key, from PEM.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, String> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("the certificate PEM does not parse: {error}"))?;
    if certs.is_empty() {
        return Err("the certificate file holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|error| format!("the key PEM does not parse: {error}"))?;
    // rustls loads the key and checks it is the certificate's (a pair that does not match is
    // refused here, at start or reload, instead of failing every handshake).
    CertifiedKey::from_der(certs, key, &provider())
        .map_err(|error| format!("the key is not usable with the certificate: {error}"))
}

/// The current certificate, swapped whole on reload.
#[derive(Debug)]
struct Reloadable(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Reloadable {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().expect("certificate lock").clone())
    }
}

/// The server's TLS acceptor.
#[derive(Clone)]
pub struct Acceptor {
    config: Arc<ServerConfig>,
    current: Arc<Reloadable>,
}

impl Acceptor {
    /// An acceptor serving `cert_pem`/`key_pem`, verifying client certificates against
    /// `client_ca_pem` when given (required with `require_client_cert`).
    pub fn new(
        cert_pem: &[u8],
        key_pem: &[u8],
        client_ca_pem: Option<&[u8]>,
        require_client_cert: bool,
    ) -> Result<Acceptor, String> {
        let current = Arc::new(Reloadable(RwLock::new(Arc::new(certified_key(
            cert_pem, key_pem,
        )?))));
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .map_err(|error| error.to_string())?;
        let builder = match client_ca_pem {
            None if require_client_cert => {
                return Err("requiring client certificates needs the CA to verify them (--client-ca)".into())
            }
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(ca) {
                    let cert = cert.map_err(|error| format!("the client CA PEM does not parse: {error}"))?;
                    roots
                        .add(cert)
                        .map_err(|error| format!("the client CA: {error}"))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
                let verifier = match require_client_cert {
                    true => verifier,
                    false => verifier.allow_unauthenticated(),
                };
                builder.with_client_cert_verifier(verifier.build().map_err(|error| error.to_string())?)
            }
        };
        let mut config = builder.with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Acceptor {
            config: Arc::new(config),
            current,
        })
    }

    /// Serves `cert_pem`/`key_pem` to new connections from now on; on error keeps the old.
    pub fn reload(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), String> {
        let key = certified_key(cert_pem, key_pem)?;
        *self.current.0.write().expect("certificate lock") = Arc::new(key);
        Ok(())
    }

    /// The TLS connections accepted on `listener`, for `serve_with_incoming_shutdown`. The
    /// accept loop ends when the stream is dropped (the server stopped).
    pub fn incoming(&self, listener: TcpListener) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
        self.incoming_bounded(listener, MAX_PENDING_HANDSHAKES)
    }

    fn incoming_bounded(
        &self,
        listener: TcpListener,
        max_pending: usize,
    ) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
        let (sender, receiver) = mpsc::channel(ACCEPTED_QUEUE);
        let acceptor = tokio_rustls::TlsAcceptor::from(self.config.clone());
        let pending = Arc::new(tokio::sync::Semaphore::new(max_pending));
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    () = sender.closed() => return,
                };
                let tcp = match accepted {
                    Ok((tcp, _)) => tcp,
                    Err(_) => {
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                        continue;
                    }
                };
                let Ok(permit) = pending.clone().try_acquire_owned() else {
                    continue; // Dropping `tcp` closes it.
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
                    drop(permit);
                    if let Ok(Ok(tls)) = handshake {
                        let _ = sender.send(Ok(tls)).await;
                    }
                });
            }
        });
        ReceiverStream::new(receiver)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_connection_beyond_the_pending_handshake_limit_is_closed_at_once() {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let acceptor = Acceptor::new(
            made.cert.pem().as_bytes(),
            made.key_pair.serialize_pem().as_bytes(),
            None,
            false,
        )
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let _incoming = acceptor.incoming_bounded(listener, 2);
        // Two clients that never start their handshake hold both places.
        let _first = TcpStream::connect(address).await.unwrap();
        let _second = TcpStream::connect(address).await.unwrap();
        let mut third = TcpStream::connect(address).await.unwrap();
        // Closed at once, well before HANDSHAKE_TIMEOUT would close it.
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(HANDSHAKE_TIMEOUT / 2, third.read(&mut byte))
            .await
            .expect("closed before the handshake timeout");
        assert_eq!(read.unwrap(), 0, "end of stream");
    }

    #[test]
    fn a_key_that_does_not_parse_is_refused_with_the_reason() {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let refused = certified_key(made.cert.pem().as_bytes(), b"not a key").unwrap_err();
        assert!(refused.contains("key"), "{refused}");
        let refused = certified_key(b"", made.key_pair.serialize_pem().as_bytes()).unwrap_err();
        assert!(refused.contains("no certificate"), "{refused}");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_and_its_own_accepted() {
        let one = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = one.cert.pem();
        let refused = certified_key(cert.as_bytes(), other.key_pair.serialize_pem().as_bytes()).unwrap_err();
        assert!(refused.contains("not usable with the certificate"), "{refused}");
        certified_key(cert.as_bytes(), one.key_pair.serialize_pem().as_bytes()).unwrap();
    }
}
