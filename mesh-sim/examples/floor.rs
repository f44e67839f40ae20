//! The floor of the `status` benchmark: every page of one LIST fetched over
//! one HTTPS connection and thrown away undecoded.
//!
//! ```text
//! cargo run --release -p mesh-sim --example floor -- <kubeconfig> [--path /api/v1/pods] [--limit 500] [--scan] [--protobuf]
//! ```
//!
//! No client can read the pods faster than the server sends them, so this is
//! what `kubectl mesh-upgrade status -A` is measured against: the same
//! kubeconfig (server, CA, bearer token), the same HTTP/1.1 over TLS the
//! plugin's client speaks, the same `limit` + `continue` pages. Each page's
//! body is read whole; of its JSON only the list head is looked at, for the
//! `continue` token the next request needs. Prints one line:
//! `pages=<n> bytes=<n> seconds=<s>` (connection set-up included).
//!
//! With `--scan` each page is also scanned whole by serde_json (every value
//! skipped with `IgnoredAny`, nothing kept) on a second thread while the
//! next page is fetched: the least work a client that reads the pods' JSON
//! at all has to do, pipelined as the plugin's pager is.
//!
//! With `--protobuf` the pages are asked for as the plugin asks for pods
//! (`Accept: application/vnd.kubernetes.protobuf, application/json`) and
//! the `continue` token is read from the protobuf list's `ListMeta`: the
//! floor for a client that reads protobuf. (`--scan` scans JSON only.)

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use base64::Engine;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;

struct Args {
    kubeconfig: String,
    path: String,
    limit: u32,
    scan: bool,
    protobuf: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let usage =
        "usage: floor <kubeconfig> [--path /api/v1/pods] [--limit 500] [--scan] [--protobuf]";
    let mut it = std::env::args().skip(1);
    let mut args = Args {
        kubeconfig: it.next().context(usage)?,
        path: "/api/v1/pods".to_string(),
        limit: 500,
        scan: false,
        protobuf: false,
    };
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--scan" => {
                args.scan = true;
                continue;
            }
            "--protobuf" => {
                args.protobuf = true;
                continue;
            }
            _ => {}
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--path" => args.path = value,
            "--limit" => args.limit = value.parse().context("--limit")?,
            other => bail!("unknown argument {other}; {usage}"),
        }
    }
    if args.scan && args.protobuf {
        bail!("--scan scans JSON pages; it cannot go with --protobuf");
    }
    Ok(args)
}

/// The current context's server URL, CA certificate and bearer token.
struct Target {
    host: String,
    port: u16,
    ca: CertificateDer<'static>,
    token: String,
}

fn target(kubeconfig: &str) -> anyhow::Result<Target> {
    let text =
        std::fs::read_to_string(kubeconfig).with_context(|| format!("reading {kubeconfig}"))?;
    let doc: Value = serde_yaml::from_str(&text).context("parsing the kubeconfig")?;
    let named = |list: &str, name: &Value| {
        doc[list]
            .as_array()
            .and_then(|items| items.iter().find(|i| &i["name"] == name))
            .cloned()
            .with_context(|| format!("{list}: no entry named {name}"))
    };
    let context = named("contexts", &doc["current-context"])?;
    let cluster = named("clusters", &context["context"]["cluster"])?;
    let user = named("users", &context["context"]["user"])?;
    let server = cluster["cluster"]["server"]
        .as_str()
        .context("the cluster has no server")?;
    let authority = server
        .strip_prefix("https://")
        .context("the server URL is not https")?
        .trim_end_matches('/');
    let (host, port) = authority
        .rsplit_once(':')
        .context("the server URL has no port")?;
    let ca_pem = base64::engine::general_purpose::STANDARD
        .decode(
            cluster["cluster"]["certificate-authority-data"]
                .as_str()
                .context("the cluster has no certificate-authority-data")?,
        )
        .context("certificate-authority-data is not base64")?;
    Ok(Target {
        host: host.to_string(),
        port: port.parse().context("the server port")?,
        ca: CertificateDer::from_pem_slice(&ca_pem).context("the CA certificate")?,
        token: user["user"]["token"]
            .as_str()
            .context("the user has no token")?
            .to_string(),
    })
}

/// The `continue` token of a protobuf list page: `k8s\0`, then the
/// envelope's field 2 (the list), its field 1 (`ListMeta`), its field 3.
fn protobuf_continue_token(body: &[u8]) -> anyhow::Result<Option<String>> {
    use mesh_sim::server::proto::Message;
    let unknown = body
        .strip_prefix(b"k8s\0")
        .context("the page is not protobuf")?;
    let token = Message::parse(unknown)
        .and_then(|envelope| envelope.message(2))
        .and_then(|list| list.message(1))
        .context("the page is not a protobuf list")?
        .string(3)
        .unwrap_or_default();
    Ok((!token.is_empty()).then(|| token.to_string()))
}

/// The `continue` token of a list page, read from the list head (the
/// `metadata` that precedes `items`) without decoding the items.
fn continue_token(body: &[u8]) -> anyhow::Result<Option<String>> {
    let head_end = body
        .windows(8)
        .position(|w| w == b"\"items\":")
        .context("the page has no items")?;
    let head = std::str::from_utf8(&body[..head_end]).context("the list head is not UTF-8")?;
    let Some(start) = head.find("\"continue\":\"") else {
        return Ok(None);
    };
    let rest = &head[start + "\"continue\":\"".len()..];
    let token = &rest[..rest.find('"').context("an unterminated continue token")?];
    Ok((!token.is_empty()).then(|| token.to_string()))
}

async fn run(args: &Args) -> anyhow::Result<(usize, usize)> {
    let target = target(&args.kubeconfig)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(target.ca.clone()).context("trusting the CA")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .context("connecting")?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(target.host.clone()).context("the server name")?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .context("the TLS handshake")?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .context("the HTTP handshake")?;
    let connection = tokio::spawn(connection);

    // The scanning thread, fed the pages as they arrive.
    let scanner = args.scan.then(|| {
        let (pages, scanned) = std::sync::mpsc::channel::<Bytes>();
        let worker = std::thread::spawn(move || -> anyhow::Result<()> {
            for page in scanned {
                serde_json::from_slice::<serde::de::IgnoredAny>(&page)
                    .context("a page is not JSON")?;
            }
            Ok(())
        });
        (pages, worker)
    });
    let (mut pages, mut bytes) = (0, 0);
    let mut token: Option<String> = None;
    loop {
        let mut uri = format!("{}?limit={}", args.path, args.limit);
        if let Some(t) = &token {
            uri.push_str("&continue=");
            uri.push_str(t);
        }
        let request = hyper::Request::get(uri)
            .header("host", format!("{}:{}", target.host, target.port))
            .header("authorization", format!("Bearer {}", target.token))
            .header(
                "accept",
                if args.protobuf {
                    "application/vnd.kubernetes.protobuf, application/json"
                } else {
                    "application/json"
                },
            )
            .body(Empty::<Bytes>::new())?;
        let response = sender.send_request(request).await.context("a page")?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("page {} answered {status}", pages + 1);
        }
        pages += 1;
        bytes += body.len();
        token = if args.protobuf {
            protobuf_continue_token(&body)?
        } else {
            continue_token(&body)?
        };
        if let Some((to_scan, _)) = &scanner {
            to_scan.send(body).context("the scanning thread stopped")?;
        }
        if token.is_none() {
            break;
        }
    }
    drop(sender);
    let _ = connection.await;
    if let Some((to_scan, worker)) = scanner {
        drop(to_scan);
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("the scanning thread panicked"))??;
    }
    Ok((pages, bytes))
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = Instant::now();
    let (pages, bytes) = runtime.block_on(run(&args))?;
    println!(
        "pages={pages} bytes={bytes} seconds={:.3}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
