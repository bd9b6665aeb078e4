//! `mcp-cors-tui`: operate a running mcp-cors server from the terminal.
//!
//! Without a subcommand it starts the interactive UI; the subcommands are for scripts and
//! CI. Every subcommand but `check` talks to the server's admin socket, found from
//! `--config` (as the server derives it) or given with `--socket`. When no server answers
//! there, `origins`, `hosts` and `status` work on the `--config` file itself (edits as
//! safe as the server's). With `--source etcd://…` (or `etcds://…`, over TLS), `origins`,
//! `hosts`, `check` and `status` work on the policy in etcd itself, no server needed, and
//! the rest find the server's socket by the library's rule. The interactive UI also
//! watches a fleet: several `--socket`s, or a pattern such as `'/run/mcp/*/cors.sock'`.

mod check;
mod cli;
mod clock;
mod conn;
mod escape;
#[cfg(test)]
mod fixtures;
mod input;
mod lists;
mod probe;
mod state;
mod terminal;
mod ui;
mod view;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{ArgAction, Args, Parser, Subcommand};

use conn::Target;
use conn::sockets::SocketArg;
use mcp_cors::{EtcdSource, Source};

/// Operate an mcp-cors guarded MCP server: watch decisions live, allow or remove origins
/// without a restart, validate policy files.
#[derive(Debug, Parser)]
#[command(name = "mcp-cors-tui", version, about)]
struct Cli {
    #[command(flatten)]
    target: TargetArgs,
    /// The interactive UI without edits, for on-call viewers: the keys that allow, add or
    /// remove an origin or host are refused. Not with a subcommand.
    #[arg(long)]
    read_only: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Where the admin socket is.
#[derive(Debug, Args)]
struct TargetArgs {
    /// The policy file the server watches; its admin socket is found from it.
    #[arg(long, global = true, default_value = "cors.toml", value_name = "FILE")]
    config: PathBuf,
    /// The admin socket itself (overrides --config). The interactive UI takes several
    /// (repeat it) or a pattern (`*`, `?` in any part of the path, quoted so that the
    /// shell leaves it alone): a fleet view over every replica, joined as they appear.
    #[arg(long, global = true, value_name = "PATH", conflicts_with = "config", action = ArgAction::Append)]
    socket: Vec<PathBuf>,
    /// Where the policy lives: a file (like --config), or
    /// etcd://HOST:PORT[,HOST:PORT…]/KEY[?cache=…&user=…&password_file=…], edited there
    /// directly (no server needed) by `origins`, `hosts`, `check` and `status`. TLS:
    /// etcds://… (the system's roots), or any of ca_file=PATH (a private CA),
    /// cert_file=PATH&key_file=PATH (a client certificate, for --client-cert-auth) and
    /// server_name=NAME (the name the certificate is for).
    #[arg(long, global = true, value_name = "URI", value_parser = parse_source, conflicts_with_all = ["config", "socket"])]
    source: Option<Source>,
}

fn parse_source(text: &str) -> Result<Source, String> {
    Source::parse(text).map_err(|e| e.to_string())
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Follow decisions live, one line per event (like `kubectl logs -f`).
    Tail {
        /// Print each event as the JSON line the server sent.
        #[arg(long)]
        json: bool,
        /// Print up to this many recent events first.
        #[arg(long, default_value_t = 0, value_name = "N")]
        replay: usize,
    },
    /// List or change the allowed origins (the policy file is edited in place: through the
    /// server, or directly when no server answers on its socket).
    Origins {
        #[command(subcommand)]
        command: OriginsCommand,
    },
    /// List or change the allowed hosts: the DNS-rebinding guard on `Host` (the policy
    /// file is edited in place: through the server, or directly when none answers).
    Hosts {
        #[command(subcommand)]
        command: HostsCommand,
    },
    /// Totals, mode, listeners, reloads, the last reload error, per-origin counters and
    /// the hosts refused. With no server answering: the policy file's validity.
    Status {
        /// One JSON document: the server's `stats` and `policy` replies as sent.
        #[arg(long)]
        json: bool,
    },
    /// The audit trail of changes to the policy: admin edits (with the peer's uid, pid and
    /// executable) and reloads that changed it (with the diff), oldest first. From the
    /// server (its recent records); when no server runs, from the `[admin] audit_log`
    /// file of --config.
    Audit {
        /// One JSON object per line, as in the audit log file.
        #[arg(long)]
        json: bool,
    },
    /// Validate a policy file offline, printing each error with its line and column
    /// (like `nginx -t`). Exit 0 when valid, 1 otherwise.
    Check {
        /// The policy file, e.g. cors.toml (with `--source etcd://…`: none, the value is
        /// checked).
        file: Option<PathBuf>,
    },
    /// What a browser page at ORIGIN will do with any MCP endpoint: replays its requests,
    /// applies the Fetch standard's CORS checks and the MCP guards. Exit 0 when every
    /// step passes, 1 when one fails, 2 on a usage or connection error.
    Probe(ProbeArgs),
}

/// `probe URL --origin ORIGIN …`
#[derive(Debug, Args)]
struct ProbeArgs {
    /// The MCP Streamable HTTP endpoint, e.g. http://localhost:8080/mcp.
    url: String,
    /// The page's origin, e.g. http://localhost:5173.
    #[arg(long)]
    origin: String,
    /// Requests as with `credentials: "include"` (cookies, HTTP auth).
    #[arg(long)]
    credentials: bool,
    /// Skip the guard checks (a foreign Origin gets 403, a foreign Host is refused).
    #[arg(long)]
    no_security: bool,
    /// A header the page adds to every MCP request, e.g. "Authorization: Bearer abc".
    #[arg(long = "header", value_name = "K:V")]
    headers: Vec<String>,
    /// Print {"ok","url","origin","steps":[{"name","ok","detail"}],"warnings"}.
    #[arg(long)]
    json: bool,
}

/// `--route NAME`: a `[routes.NAME]` table's list instead of the top level's.
#[derive(Debug, Args)]
struct RouteArg {
    /// Work on the list of the route `[routes.NAME]` instead of the top level's. A route
    /// that does not set the list inherits the top level's: an edit writes that list out
    /// in full in the route, with the change.
    #[arg(long, value_name = "NAME")]
    route: Option<String>,
}

#[derive(Debug, Subcommand)]
enum OriginsCommand {
    /// Print the allowed origins, one per line (with --route, those the route serves).
    List {
        #[command(flatten)]
        route: RouteArg,
    },
    /// Allow an origin (or wildcard entry); succeeds if it was already allowed.
    Add {
        /// e.g. https://app.example.com, https://*.example.com, http://localhost:*
        origin: String,
        /// Needed to add `*`, which allows every origin (every web site).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        route: RouteArg,
    },
    /// Stop allowing an origin; fails if it is not in the policy.
    Remove {
        /// The origin, as listed by `origins list`.
        origin: String,
        #[command(flatten)]
        route: RouteArg,
    },
}

#[derive(Debug, Subcommand)]
enum HostsCommand {
    /// Print the allowed hosts, one per line (with --route, those the route serves).
    List {
        #[command(flatten)]
        route: RouteArg,
    },
    /// Allow a host; succeeds if it was already allowed. A file without `allowed_hosts`
    /// gets the defaults (localhost, 127.0.0.1, [::1]) written out with it.
    Add {
        /// e.g. api.example.com, localhost:8080, *.example.com, [::1], 10.0.0.0/8
        host: String,
        /// Needed to add `*`, which turns the Host guard off.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        route: RouteArg,
    },
    /// Stop allowing a host; fails if it is not in the policy.
    Remove {
        /// The host, as listed by `hosts list`.
        host: String,
        #[command(flatten)]
        route: RouteArg,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // `probe` keeps 1 for "a step fails", so its usage errors exit 2.
        Err(e) if probing(std::env::args().skip(1)) => {
            let help = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
            usage_error(&e);
            return if help {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
        Err(e) => return usage_error(&e),
    };
    if cli.read_only && cli.command.is_some() {
        // Worded like clap's own usage errors, which scripts may match.
        eprintln!(
            "error: --read-only is for the interactive UI; a subcommand cannot take it\n\n\
             Usage: mcp-cors-tui --read-only [--config FILE | --socket PATH]"
        );
        return ExitCode::FAILURE;
    }
    let sockets: Vec<SocketArg> = cli.target.socket.into_iter().map(SocketArg::new).collect();
    let fleet = sockets.len() > 1 || sockets.iter().any(SocketArg::is_pattern);
    if fleet && cli.command.is_some() {
        // Worded like clap's own usage errors, which scripts may match.
        eprintln!(
            "error: several --socket, or a pattern, are for the interactive UI; a subcommand \
             talks to one server: give one --socket PATH\n\n\
             Usage: mcp-cors-tui [--socket PATH]... (the interactive UI over a fleet)"
        );
        return ExitCode::FAILURE;
    }
    if fleet {
        return ui::run(ui::Watch::Fleet(sockets), cli.read_only);
    }
    let (config, etcd) = match cli.target.source {
        Some(Source::File(path)) => (path, None),
        Some(Source::Etcd(etcd)) => (cli.target.config, Some(etcd)),
        None => (cli.target.config, None),
    };
    let target = Target {
        config,
        socket: sockets.first().map(|s| s.as_path().to_path_buf()),
    };
    let socket = match &etcd {
        Some(etcd) => etcd_socket(etcd),
        None => target.socket_path(),
    };
    // `audit` falls back on the config's audit log file: not for an etcd source (no
    // file of ours) nor for a socket given alone (no config named).
    let has_file = etcd.is_none() && target.socket.is_none();
    if let Some(etcd) = etcd.filter(|_| cli.command.as_ref().is_some_and(Command::on_source)) {
        return on_etcd(&etcd, &socket, cli.command);
    }
    match cli.command {
        None => ui::run(ui::Watch::One(socket), cli.read_only),
        Some(Command::Check { file: Some(file) }) => check::run(&file),
        Some(Command::Check { file: None }) => {
            // Worded like clap's own usage errors, which scripts may match.
            eprintln!(
                "error: the following required arguments were not provided:\n  <FILE>\n\n\
                 Usage: mcp-cors-tui check <FILE>   (or --source etcd://HOST:PORT/KEY check)"
            );
            ExitCode::FAILURE
        }
        Some(Command::Probe(args)) => probe::run(&probe::Options {
            url: args.url,
            origin: args.origin,
            credentials: args.credentials,
            no_security: args.no_security,
            headers: args.headers,
            json: args.json,
        }),
        Some(Command::Tail { json, replay }) => cli::execute(cli::tail::run(&socket, json, replay)),
        Some(Command::Status { json }) => {
            let at = cli::origins::Where {
                socket: &socket,
                file: has_file.then_some(target.config.as_path()),
            };
            cli::execute(cli::status::run_at(at, json))
        }
        Some(Command::Audit { json }) => {
            let log = has_file.then(|| target.audit_log_path()).flatten();
            cli::execute(cli::audit::run(&socket, log, json))
        }
        Some(Command::Origins { command }) => cli::execute(async {
            use cli::origins::{self as edit, List};
            let socket = edit::Where {
                socket: &socket,
                file: has_file.then_some(target.config.as_path()),
            };
            match command {
                OriginsCommand::List { route } => {
                    edit::list(socket, List::Origins, route.route.as_deref()).await
                }
                OriginsCommand::Add {
                    origin,
                    force,
                    route,
                } => {
                    edit::add(
                        socket,
                        List::Origins,
                        &origin,
                        force,
                        route.route.as_deref(),
                    )
                    .await
                }
                OriginsCommand::Remove { origin, route } => {
                    edit::remove(socket, List::Origins, &origin, route.route.as_deref()).await
                }
            }
        }),
        Some(Command::Hosts { command }) => cli::execute(async {
            use cli::origins::{self as edit, List};
            let socket = edit::Where {
                socket: &socket,
                file: has_file.then_some(target.config.as_path()),
            };
            match command {
                HostsCommand::List { route } => {
                    edit::list(socket, List::Hosts, route.route.as_deref()).await
                }
                HostsCommand::Add { host, force, route } => {
                    edit::add(socket, List::Hosts, &host, force, route.route.as_deref()).await
                }
                HostsCommand::Remove { host, route } => {
                    edit::remove(socket, List::Hosts, &host, route.route.as_deref()).await
                }
            }
        }),
    }
}

impl Command {
    /// Whether it works on an etcd source itself, rather than on a server's socket.
    fn on_source(&self) -> bool {
        matches!(
            self,
            Command::Origins { .. }
                | Command::Hosts { .. }
                | Command::Check { file: None }
                | Command::Status { .. }
        )
    }
}

/// `origins`, `hosts`, `check` and `status` against the policy in etcd.
fn on_etcd(etcd: &EtcdSource, socket: &std::path::Path, command: Option<Command>) -> ExitCode {
    use cli::origins::List;
    use cli::source;
    // `Ok((list, route))` to print, `Err(request)` to make.
    let op = match &command {
        Some(Command::Origins { command }) => Some(match command {
            OriginsCommand::List { route } => Ok((List::Origins, route.route.clone())),
            OriginsCommand::Add {
                origin,
                force,
                route,
            } => Err(List::Origins.add(origin, *force, route.route.as_deref())),
            OriginsCommand::Remove { origin, route } => {
                Err(List::Origins.remove(origin, route.route.as_deref()))
            }
        }),
        Some(Command::Hosts { command }) => Some(match command {
            HostsCommand::List { route } => Ok((List::Hosts, route.route.clone())),
            HostsCommand::Add { host, force, route } => {
                Err(List::Hosts.add(host, *force, route.route.as_deref()))
            }
            HostsCommand::Remove { host, route } => {
                Err(List::Hosts.remove(host, route.route.as_deref()))
            }
        }),
        _ => None,
    };
    match (op, command) {
        (Some(Ok((which, route))), _) => cli::execute(source::list(etcd, which, route.as_deref())),
        (Some(Err(request)), _) => cli::execute(source::change(etcd, request)),
        (None, Some(Command::Status { json })) => cli::execute(source::status(etcd, socket, json)),
        (None, Some(Command::Check { .. })) => {
            let mut code = ExitCode::FAILURE;
            let ran = cli::execute(async {
                code = source::check(etcd).await?;
                Ok(())
            });
            if ran == ExitCode::SUCCESS { code } else { ran }
        }
        _ => ExitCode::FAILURE,
    }
}

/// The admin socket of the server following `etcd` (the value's `[admin] socket`, or
/// the default location named after the key).
fn etcd_socket(etcd: &EtcdSource) -> PathBuf {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(cli::source::socket(etcd)),
        Err(_) => etcd.admin_socket(&mcp_cors::AdminSettings::default()),
    }
}

/// Whether the command line names the `probe` subcommand (skipping the global options
/// and their values).
fn probing(mut args: impl Iterator<Item = String>) -> bool {
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "--socket" | "--source" => {
                args.next();
            }
            a if a.starts_with('-') => {}
            a => return a == "probe",
        }
    }
    false
}

/// Prints clap's message for a parse outcome. `--help` and `--version` succeed (stdout,
/// exit 0); every usage error exits 1 (not clap's 2), as every other failure does, so
/// scripts need to test for one code only.
fn usage_error(error: &clap::Error) -> ExitCode {
    // Printing can only fail on a closed stdout/stderr; nothing better to do then.
    let _ = error.print();
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
