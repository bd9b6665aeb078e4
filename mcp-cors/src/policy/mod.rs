//! The policy: what `cors.toml` says, validated and compiled for the request path.

mod diff;
pub(crate) mod file;
mod load;
pub(crate) mod routes;
mod settings;

use std::path::Path;
use std::sync::Arc;

use http::HeaderValue;

pub use diff::PolicyDiff;
pub use file::MAX_FILE_SIZE;
pub use settings::{
    AdminSettings, Mode, PolicySettings, RouteSettings, admin_socket_path, audit_log_path,
};

use crate::allow_headers::HeaderAllowList;
#[cfg(feature = "server")]
use crate::counters::{Counters, OriginCounter};
use crate::error::PolicyError;
use crate::forwarded::TrustedProxies;
use crate::host::HostGuard;
use crate::matcher::OriginMatcher;
use routes::{Route, Routes};

/// A validated, compiled CORS and Origin/Host policy.
///
/// Built from TOML ([`Policy::from_toml_str`], [`Policy::from_file`]) or from
/// [`PolicySettings`] ([`Policy::from_settings`]). Every origin is normalised to the form a
/// browser sends, and every mistake is refused with its key, value and line: a `Policy`
/// that exists is one that is safe to serve.
///
/// ```
/// use mcp_cors::Policy;
///
/// let policy = Policy::from_toml_str(r#"allowed_origins = ["https://App.Example.com:443/"]"#)?;
/// assert_eq!(policy.settings().allowed_origins, ["https://app.example.com"]);
/// # Ok::<(), mcp_cors::PolicyError>(())
/// ```
#[derive(Debug)]
pub struct Policy {
    settings: PolicySettings,
    compiled: Compiled,
    /// Set on the deny-all policy served while no policy has ever loaded: why, as
    /// `<file>:<line>: <error>`. Origin refusals then give this reason instead of theirs.
    unloaded: Option<Arc<str>>,
    /// The counter of each exact entry of `allowed_origins`, in the matcher's order
    /// ([`crate::matcher::Listed`]), bound once by the store that serves the policy.
    #[cfg(feature = "server")]
    counters: std::sync::OnceLock<Box<[Arc<OriginCounter>]>>,
    /// This policy's handles for the decision metrics, registered when it is bound.
    #[cfg(feature = "metrics")]
    metrics: std::sync::OnceLock<crate::metrics::DecisionMetrics>,
}

/// The parts of a policy the request path uses, built once at load.
#[derive(Debug)]
pub(crate) struct Compiled {
    /// This compilation's identity, for what threads remember it admitted.
    pub(crate) id: crate::memo::PolicyId,
    pub(crate) origins: OriginMatcher,
    pub(crate) hosts: HostGuard,
    pub(crate) headers: HeaderAllowList,
    pub(crate) allow_methods: HeaderValue,
    /// What an allowed actual response gets besides its origin.
    pub(crate) allow_extras: &'static crate::extras::AllowExtras,
    pub(crate) max_age: HeaderValue,
    /// `trusted_proxies`: whose forwarding headers name the client.
    pub(crate) proxies: TrustedProxies,
    /// `[routes.NAME]`, each compiled into its own policy; empty for a route's own policy.
    pub(crate) routes: Routes,
}

impl Policy {
    /// Parses and validates a policy from TOML text.
    ///
    /// ```
    /// use mcp_cors::Policy;
    ///
    /// let err = Policy::from_toml_str("allowed_origins = [\"*\"]\nallow_credentials = true")
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("wildcard + credentials"));
    /// assert_eq!(err.diagnostics()[0].line, Some(1));
    /// ```
    pub fn from_toml_str(source: &str) -> Result<Policy, PolicyError> {
        let (settings, locator, mut diagnostics) = load::parse(source);
        let compiled = settings.map(|settings| load::compile(settings, &locator));
        match compiled {
            Some(Ok(policy)) if diagnostics.is_empty() => return Ok(policy),
            Some(Err(more)) => diagnostics.extend(more),
            _ => {}
        }
        // In file order, so an operator fixes the file from the top down.
        diagnostics.sort_by_key(|d| (d.line.is_none(), d.line, d.column));
        Err(PolicyError::Invalid { diagnostics })
    }

    /// Reads, parses and validates a policy file, exactly as the server does: diagnostics
    /// name the file; an empty or comment-only file is refused (most likely caught
    /// mid-write), and so is anything that is not a regular file (symlinks are followed)
    /// or is larger than [`MAX_FILE_SIZE`].
    ///
    /// ```no_run
    /// use mcp_cors::Policy;
    ///
    /// let policy = Policy::from_file("cors.toml")?;
    /// println!("{} origins allowed", policy.settings().allowed_origins.len());
    /// # Ok::<(), mcp_cors::PolicyError>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Policy, PolicyError> {
        file::load(path.as_ref()).map(|loaded| loaded.policy)
    }

    /// Validates and compiles settings built in code.
    ///
    /// ```
    /// use mcp_cors::{Policy, PolicySettings};
    ///
    /// let settings = PolicySettings {
    ///     allowed_origins: vec!["http://localhost:*".into()],
    ///     ..PolicySettings::default()
    /// };
    /// let policy = Policy::from_settings(settings)?;
    /// # Ok::<(), mcp_cors::PolicyError>(())
    /// ```
    pub fn from_settings(settings: PolicySettings) -> Result<Policy, PolicyError> {
        load::compile(settings, &load::Locator::none())
            .map_err(|diagnostics| PolicyError::Invalid { diagnostics })
    }

    /// The policy's settings, normalised (origins as browsers send them, methods in the
    /// case browsers use).
    pub fn settings(&self) -> &PolicySettings {
        &self.settings
    }

    /// The policy as TOML; loading it back gives an equal policy.
    ///
    /// ```
    /// use mcp_cors::Policy;
    ///
    /// let policy = Policy::from_toml_str(r#"allowed_origins = ["https://*.Example.com"]"#)?;
    /// let again = Policy::from_toml_str(&policy.to_toml_string())?;
    /// assert_eq!(policy.settings(), again.settings());
    /// # Ok::<(), mcp_cors::PolicyError>(())
    /// ```
    pub fn to_toml_string(&self) -> String {
        // Serialising plain strings, bools and integers into TOML cannot fail.
        toml::to_string(&self.settings).unwrap_or_default()
    }

    /// The policy used when none could be loaded: no origin is allowed, so every
    /// cross-origin request is refused.
    pub fn deny_all() -> Policy {
        Policy::default()
    }

    /// The deny-all policy served while no policy has ever loaded, carrying why: the first
    /// diagnostic as its `Display` renders it (`cors.toml:2:19: allowed_origins: …`), or the
    /// whole error when there is none (a file that cannot be read). Refusals read the reason
    /// from the policy they were decided by, so saying it costs the request path nothing.
    pub(crate) fn unloaded(error: &PolicyError) -> Policy {
        let reason = match error.diagnostics().first() {
            Some(first) => first.to_string(),
            None => error.to_string(),
        };
        Policy::unloaded_because(reason)
    }

    /// [`Policy::unloaded`] with the reason given as text.
    pub(crate) fn unloaded_because(reason: String) -> Policy {
        Policy {
            unloaded: Some(reason.into()),
            #[cfg(feature = "server")]
            counters: std::sync::OnceLock::new(),
            #[cfg(feature = "metrics")]
            metrics: std::sync::OnceLock::new(),
            ..Policy::default()
        }
    }

    /// Why no policy is loaded, on the deny-all policy served meanwhile.
    pub(crate) fn unloaded_reason(&self) -> Option<&Arc<str>> {
        self.unloaded.as_ref()
    }

    pub(crate) fn compiled(&self) -> &Compiled {
        &self.compiled
    }

    /// The route whose policy decides a request to `path`, as the router sees it.
    /// Whether the policy has any `[routes.NAME]` table.
    #[inline]
    pub(crate) fn has_routes(&self) -> bool {
        !self.compiled.routes.is_empty()
    }

    #[inline]
    pub(crate) fn route(&self, path: &str) -> Option<&Route> {
        self.compiled.routes.select(path)
    }

    /// The name of the route a request to `path` gets (the most specific match), or `None`
    /// for the top-level policy. `path` is the path as actix-web's router matches it
    /// (`HttpRequest::match_info().path()`), which is what the middleware looks up.
    ///
    /// ```
    /// use mcp_cors::Policy;
    ///
    /// let policy = Policy::from_toml_str(r#"
    ///     [routes.health]
    ///     paths = ["/health", "/ready"]
    ///     guard = false
    ///     [routes.docs]
    ///     paths = ["/docs/*"]
    /// "#)?;
    /// assert_eq!(policy.route_name("/health"), Some("health"));
    /// assert_eq!(policy.route_name("/docs"), Some("docs"));
    /// assert_eq!(policy.route_name("/docs/a/b"), Some("docs"));
    /// assert_eq!(policy.route_name("/docsx"), None);
    /// assert_eq!(policy.route_name("/mcp"), None);
    /// # Ok::<(), mcp_cors::PolicyError>(())
    /// ```
    pub fn route_name(&self, path: &str) -> Option<&str> {
        self.route(path).map(|r| &*r.name)
    }

    /// The policy route `name` applies (the top level with its overrides), if there is
    /// such a route.
    pub fn route_policy(&self, name: &str) -> Option<&Policy> {
        self.compiled
            .routes
            .iter()
            .find(|r| &*r.name == name)
            .map(|r| &r.policy)
    }

    /// Binds a counter of `counters` to each exactly listed origin (of the top level and
    /// of every route), and registers the decision metrics, before the policy serves;
    /// once, as a policy serves one store.
    #[cfg(feature = "server")]
    pub(crate) fn bind_counters(&self, counters: &Counters) {
        let routes = self.compiled.routes.iter();
        let routes = routes.map(|r| (Some(&*r.name), r.guard, &r.policy));
        for (_route, _guarded, policy) in std::iter::once((None, true, self)).chain(routes) {
            // A `guard = false` route decides nothing: no decision metrics for it.
            #[cfg(feature = "metrics")]
            if _guarded {
                policy
                    .metrics
                    .get_or_init(|| crate::metrics::DecisionMetrics::new(_route));
            }
            policy.counters.get_or_init(|| {
                let origins = policy.compiled.origins.exact_origins();
                origins
                    .into_iter()
                    .map(|o| counters.listed_counter(o))
                    .collect()
            });
        }
        counters.forget_unlisted();
    }

    /// Counts `decision` (made by this policy) in the decision metrics.
    #[cfg(feature = "metrics")]
    #[inline]
    pub(crate) fn count_metrics(&self, decision: &crate::Decision) {
        if let Some(metrics) = self.metrics.get() {
            let kind = decision.reason().map(crate::DenyReason::kind);
            metrics.record(decision.verdict(), kind, decision.is_preflight());
        }
    }

    /// Counts an allowed actual request in the decision metrics, as [`Policy::count_metrics`]
    /// counts its decision, for the middleware's usual request (which builds none).
    #[cfg(feature = "metrics")]
    #[inline]
    pub(crate) fn count_allowed_metric(&self) {
        if let Some(metrics) = self.metrics.get() {
            metrics.record(crate::Verdict::Allow, None, false);
        }
    }

    /// The counter bound to the exact entry `listed` (none before the policy is bound).
    #[cfg(feature = "server")]
    #[inline]
    pub(crate) fn counter(&self, listed: crate::matcher::Listed) -> Option<&OriginCounter> {
        self.counters.get()?.get(listed.index()).map(|c| &**c)
    }
}

impl Default for Policy {
    /// The MCP-ready defaults with no allowed origin.
    fn default() -> Self {
        match Policy::from_settings(PolicySettings::default()) {
            Ok(policy) => policy,
            Err(e) => unreachable!("the default settings are valid: {e}"),
        }
    }
}

impl PartialEq for Policy {
    /// Policies are equal when their normalised settings are: they behave the same.
    fn eq(&self, other: &Self) -> bool {
        self.settings == other.settings
    }
}
