//! `probe URL --origin ORIGIN`: what a browser page at ORIGIN will do with any MCP
//! Streamable HTTP endpoint, ours or not.
//!
//! The probe replays the page's requests ([`plan`]) over a raw HTTP client ([`http`]),
//! judges each answer with the Fetch standard's CORS rules ([`fetch`]), checks the MCP
//! guards ([`guards`]), collects [`warnings`] and prints a [`report`].
//!
//! Exit codes: 0 every step passes, 1 a step fails (the first one named on stderr), 2 a
//! usage or connection error.

pub mod fetch;
pub mod guards;
pub mod http;
pub mod plan;
pub mod report;
pub mod sse;
pub mod warnings;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use url::Url;

use http::{Network, Transport};
use plan::Page;
use report::Report;

/// What to probe, from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    /// The MCP endpoint, e.g. `http://localhost:8080/mcp`.
    pub url: String,
    /// The page's origin, e.g. `http://localhost:5173`.
    pub origin: String,
    /// Requests as with `credentials: "include"`.
    pub credentials: bool,
    /// Skip the foreign Origin / Host guard checks.
    pub no_security: bool,
    /// `K:V` headers the page adds to every MCP request.
    pub headers: Vec<String>,
    /// Print the JSON document instead of lines.
    pub json: bool,
}

/// Why the probe could not run.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The endpoint is not an http(s) URL.
    #[error(
        "the URL '{url}' is not usable: {reason}; give the endpoint, e.g. http://localhost:8080/mcp"
    )]
    Url {
        /// As given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The origin is not `scheme://host[:port]` (or `null`).
    #[error(
        "--origin '{origin}' is not an origin: {reason}; give scheme://host[:port] as the browser's address bar shows it, e.g. http://localhost:5173"
    )]
    Origin {
        /// As given.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--header` that is not `K:V`, or one a page cannot set.
    #[error("--header '{header}': {reason}")]
    Header {
        /// As given.
        header: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Nothing answered.
    #[error(transparent)]
    Unreachable(#[from] plan::Unreachable),
}

/// Runs the probe over the network and prints its report; the exit code as documented.
pub fn run(options: &Options) -> ExitCode {
    let page = match page(options) {
        Ok(page) => page,
        Err(e) => return usage(&e),
    };
    match probe(&mut Network::new(), &page, !options.no_security) {
        Ok(report) => print(&report, options.json),
        Err(e) => {
            if options.json {
                // A monitor parsing stdout still gets a document saying what happened.
                let doc = serde_json::json!({
                    "ok": false, "url": page.url.as_str(), "origin": page.origin,
                    "steps": [], "warnings": [], "error": e.to_string(),
                });
                println!("{doc}");
            }
            usage(&e)
        }
    }
}

fn usage(e: &ProbeError) -> ExitCode {
    eprintln!("mcp-cors-tui probe: {e}");
    ExitCode::from(2)
}

/// Every step against `t`: the browser's, then the guards when `security`.
pub fn probe(t: &mut dyn Transport, page: &Page, security: bool) -> Result<Report, ProbeError> {
    let mut report = Report {
        url: page.url.to_string(),
        origin: page.origin.clone(),
        ..Report::default()
    };
    if let Ok(origin) = Url::parse(&page.origin) {
        let spaces = (
            warnings::space_of_origin(&origin),
            warnings::space_of_target(&page.url),
        );
        if let Some(w) = warnings::private_network(spaces.0, spaces.1) {
            report.warn(w);
        }
    }
    plan::run(t, page, &mut report)?;
    if security {
        guards::run(t, page, &mut report);
    }
    Ok(report)
}

/// Prints the report (stdout) and the first failure (stderr); 0 or 1.
fn print(report: &Report, json: bool) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let text = if json {
        format!("{}\n", report.to_json())
    } else {
        let colour = out.is_terminal() && std::env::var_os("NO_COLOR").is_none();
        report.to_text(colour)
    };
    // A closed stdout (`| head`) loses only the output, never the exit code.
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    match report.first_failure() {
        None => ExitCode::SUCCESS,
        Some(step) => {
            eprintln!(
                "mcp-cors-tui probe: a page at {} cannot use {}: {} failed: {}",
                report.origin, report.url, step.name, step.detail
            );
            ExitCode::FAILURE
        }
    }
}

/// The page and endpoint from the options, validated.
pub fn page(options: &Options) -> Result<Page, ProbeError> {
    let url = endpoint(&options.url)?;
    let origin = serialize_origin(&options.origin)?;
    let extra = options
        .headers
        .iter()
        .map(|h| extra_header(h, options.credentials))
        .collect::<Result<Vec<_>, _>>()?;
    let private_network = Url::parse(&origin)
        .is_ok_and(|o| warnings::space_of_target(&url) < warnings::space_of_origin(&o));
    Ok(Page {
        host: host_header(&url),
        url,
        origin,
        include: options.credentials,
        extra,
        private_network,
    })
}

fn endpoint(given: &str) -> Result<Url, ProbeError> {
    let bad = |reason: &str| ProbeError::Url {
        url: given.to_owned(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(given).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("only http:// and https:// endpoints are probed"));
    }
    if url.host().is_none() {
        return Err(bad("it has no host"));
    }
    Ok(url)
}

/// The `Host` a browser sends: the host, and the port unless it is the scheme's default.
fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// The origin as a browser serializes it (lower-case, default port dropped).
fn serialize_origin(given: &str) -> Result<String, ProbeError> {
    let bad = |reason: &str| ProbeError::Origin {
        origin: given.to_owned(),
        reason: reason.to_owned(),
    };
    if given == "null" {
        return Ok(given.to_owned());
    }
    let url = Url::parse(given).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it has a path, query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("it has user information"));
    }
    let origin = url.origin();
    if !origin.is_tuple() {
        return Err(bad("its scheme has no origin"));
    }
    Ok(origin.ascii_serialization())
}

/// Header names a page cannot set (the Fetch standard's forbidden request-header names,
/// those an MCP page might try).
const FORBIDDEN: [&str; 12] = [
    "host",
    "origin",
    "content-length",
    "connection",
    "access-control-request-method",
    "access-control-request-headers",
    "access-control-request-private-network",
    "referer",
    "transfer-encoding",
    "keep-alive",
    "te",
    "upgrade",
];

/// One `--header K:V`.
fn extra_header(given: &str, credentials: bool) -> Result<(String, String), ProbeError> {
    let bad = |reason: &str| ProbeError::Header {
        header: given.to_owned(),
        reason: reason.to_owned(),
    };
    let (name, value) = given
        .split_once(':')
        .ok_or_else(|| bad("write it as Name:value, e.g. Authorization:Bearer abc"))?;
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        return Err(bad("the name is not a valid header name"));
    }
    if FORBIDDEN.contains(&name.as_str()) || name.starts_with("sec-") || name.starts_with("proxy-")
    {
        return Err(bad(
            "a page cannot set this header; the browser sets it (the probe does too)",
        ));
    }
    if name == "cookie" && !credentials {
        return Err(bad(
            "a browser sends cookies cross-origin only with credentials: add --credentials",
        ));
    }
    Ok((name, value.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(url: &str, origin: &str) -> Options {
        Options {
            url: url.into(),
            origin: origin.into(),
            credentials: false,
            no_security: false,
            headers: Vec::new(),
            json: false,
        }
    }

    #[test]
    fn the_origin_is_serialized_as_a_browser_does() {
        let page = page(&options(
            "http://localhost:8080/mcp",
            "HTTP://LocalHost:80/",
        ))
        .unwrap();
        assert_eq!(page.origin, "http://localhost");
        assert_eq!(page.host, "localhost:8080");
        let page = page_of("https://example.com/mcp", "https://app.example.com:443");
        assert_eq!(page.origin, "https://app.example.com");
        assert_eq!(page.host, "example.com");
    }

    fn page_of(url: &str, origin: &str) -> Page {
        page(&options(url, origin)).unwrap()
    }

    #[test]
    fn bad_input_says_what_and_how() {
        let e = page(&options("ftp://x/mcp", "http://a")).unwrap_err();
        assert!(e.to_string().contains("only http:// and https://"), "{e}");
        let e = page(&options("http://x/mcp", "http://a/app")).unwrap_err();
        assert!(e.to_string().contains("has a path"), "{e}");
        assert!(e.to_string().contains("scheme://host[:port]"), "{e}");
        let mut o = options("http://x/mcp", "http://a");
        o.headers = vec!["Authorization Bearer x".into()];
        assert!(page(&o).unwrap_err().to_string().contains("Name:value"));
        o.headers = vec!["Host: evil".into()];
        assert!(page(&o).unwrap_err().to_string().contains("cannot set"));
        o.headers = vec!["Cookie: a=b".into()];
        assert!(page(&o).unwrap_err().to_string().contains("--credentials"));
        o.credentials = true;
        assert_eq!(
            page(&o).unwrap().extra,
            vec![("cookie".into(), "a=b".into())]
        );
    }

    #[test]
    fn a_public_page_calling_loopback_is_a_private_network_request() {
        assert!(page_of("http://127.0.0.1:8080/mcp", "https://app.example.com").private_network);
        assert!(!page_of("http://127.0.0.1:8080/mcp", "http://localhost:5173").private_network);
    }
}
