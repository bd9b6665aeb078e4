//! The actix-web middleware: [`McpCors`] (the `Transform`, cheap to clone, one per worker)
//! and the per-worker service that applies the decision to each request.

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use actix_web::HttpResponse;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::Version;
use actix_web::http::header::{self, HeaderValue};
use arc_swap::{ArcSwap, Cache};
use futures_util::future::{self, Either, Ready};
use pin_project_lite::pin_project;

use crate::decision::{Decision, Judged};
use crate::error::Error;
use crate::events::WorkerEvents;
use crate::forwarded::Peer;
use crate::policy::Policy;
use crate::policy::file as policy_file;
use crate::response::{self, CorsHeaders};
use crate::source::{self, Lifecycle, PolicyBackend, Source};
use crate::status::ReloadStatus;
use crate::store::PolicyStore;

/// The mcp-cors middleware for actix-web.
///
/// It answers CORS preflights itself, adds CORS headers for allowed origins, and refuses
/// bad origins and bad `Host` headers with 403, as the MCP specification requires. Every
/// clone shares one policy store, so building it once per worker costs one reference count.
///
/// ```
/// use actix_web::{App, HttpResponse, web};
/// use mcp_cors::{McpCors, Policy};
///
/// let policy = Policy::from_toml_str(r#"allowed_origins = ["https://app.example.com"]"#)?;
/// let cors = McpCors::from_policy(policy);
/// let app = App::new()
///     .wrap(cors.clone())
///     .route("/mcp", web::post().to(HttpResponse::Ok));
/// # Ok::<(), mcp_cors::PolicyError>(())
/// ```
#[derive(Debug, Clone)]
pub struct McpCors {
    store: Arc<PolicyStore>,
    /// What keeps a watched policy current (its watcher, its admin socket), alive as long
    /// as a middleware serves the policy. The request path never touches it.
    source: Option<Arc<dyn Lifecycle>>,
}

impl McpCors {
    /// A middleware serving a fixed policy (until [`McpCors::replace_policy`]).
    ///
    /// Build it once, outside the `HttpServer::new` factory, and clone it into each
    /// worker's `App`, so that every worker shares the one policy:
    ///
    /// ```
    /// use actix_web::{App, HttpResponse, test, web};
    /// use mcp_cors::{McpCors, Policy};
    ///
    /// # actix_web::rt::System::new().block_on(async {
    /// let policy = Policy::from_toml_str(r#"allowed_origins = ["https://app.example.com"]"#)?;
    /// let cors = McpCors::from_policy(policy);
    /// let app = test::init_service(
    ///     App::new()
    ///         .wrap(cors.clone())
    ///         .route("/mcp", web::post().to(HttpResponse::Ok)),
    /// )
    /// .await;
    /// let req = test::TestRequest::post()
    ///     .uri("/mcp")
    ///     .insert_header(("Host", "localhost:8080"))
    ///     .insert_header(("Origin", "https://app.example.com"))
    ///     .to_request();
    /// let res = test::call_service(&app, req).await;
    /// let allowed = res.headers().get("access-control-allow-origin");
    /// assert_eq!(allowed.and_then(|v| v.to_str().ok()), Some("https://app.example.com"));
    /// # Ok::<(), mcp_cors::PolicyError>(())
    /// # })?;
    /// # Ok::<(), mcp_cors::PolicyError>(())
    /// ```
    pub fn from_policy(policy: Policy) -> McpCors {
        McpCors {
            store: Arc::new(PolicyStore::new(policy)),
            source: None,
        }
    }

    /// A middleware serving the policy in `source`: a file (any path), reloaded whenever
    /// it changes, or a key in etcd ([`Source::parse`] of an `etcd://` URI), followed as
    /// it changes.
    ///
    /// Meant to be called inside the `HttpServer::new` factory, once per worker: every
    /// call for the same source in one process shares one policy, one watcher (and one
    /// admin socket). A missing or invalid file fails closed: every cross-origin request
    /// is refused and an error naming the file and the reason is logged, and the file
    /// stays watched, so fixing it brings the server up. So does an etcd that cannot be
    /// reached at start-up, unless the source has a `cache` to serve meanwhile. Use
    /// [`McpCors::try_watched`] to treat these as start-up errors instead.
    ///
    /// ```no_run
    /// use actix_web::{App, HttpResponse, HttpServer, web};
    /// use mcp_cors::{McpCors, Source};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// HttpServer::new(|| {
    ///     App::new()
    ///         .wrap(McpCors::watched("cors.toml"))
    ///         .route("/mcp", web::post().to(HttpResponse::Ok))
    /// })
    /// .bind(("127.0.0.1", 8080))?
    /// .run()
    /// .await?;
    /// // The same, with the policy kept in etcd for a whole fleet:
    /// let source = Source::parse("etcd://127.0.0.1:2379/mcp/cors?cache=/var/cache/cors.toml")?;
    /// HttpServer::new(move || App::new().wrap(McpCors::watched(source.clone())))
    ///     .bind(("127.0.0.1", 8080))?
    ///     .run()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn watched(source: impl Into<Source>) -> McpCors {
        let source = source.into();
        match McpCors::start(&source, true) {
            Ok(cors) => cors,
            Err(error) => {
                tracing::error!(source = %describe(&source), %error, "cannot follow the policy source; refusing every cross-origin request");
                McpCors::from_policy(Policy::unloaded_because(error.to_string()))
            }
        }
    }

    /// Like [`McpCors::watched`], but a missing or invalid file (or an etcd that cannot
    /// be read, without a cache) is an error returned to the caller.
    ///
    /// ```
    /// use mcp_cors::McpCors;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("cors.toml");
    /// assert!(McpCors::try_watched(&path).is_err()); // missing
    /// std::fs::write(&path, r#"allowed_origins = ["http://localhost:5173"]"#)?;
    /// let cors = McpCors::try_watched(&path)?;
    /// assert_eq!(cors.policy().settings().allowed_origins, ["http://localhost:5173"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_watched(source: impl Into<Source>) -> Result<McpCors, Error> {
        McpCors::start(&source.into(), false)
    }

    /// A middleware serving the policy kept in a custom store: anything implementing
    /// [`PolicyBackend`] (see there for an example), followed on a thread of its own like
    /// etcd. One follower per backend name per process. Fails like
    /// [`McpCors::try_watched`] when the backend cannot be read or holds an invalid policy.
    pub fn from_source(backend: Arc<dyn PolicyBackend>) -> Result<McpCors, Error> {
        McpCors::remote(backend, None, false)
    }

    fn start(source: &Source, fail_closed: bool) -> Result<McpCors, Error> {
        match source {
            Source::File(path) => McpCors::file(path, fail_closed),
            #[cfg(feature = "etcd")]
            Source::Etcd(etcd) => McpCors::remote(
                Arc::new(crate::source::EtcdBackend::new(etcd.clone())),
                etcd.cache().map(Path::to_path_buf),
                fail_closed,
            ),
            #[cfg(not(feature = "etcd"))]
            Source::Etcd(etcd) => Err(Error::NoEtcdSupport { name: etcd.name() }),
        }
    }

    fn file(path: &Path, fail_closed: bool) -> Result<McpCors, Error> {
        let abs = source::absolute(path)?;
        let (source, store) = source::watched(&abs, fail_closed)?;
        if !fail_closed && !store.status().loaded {
            // Another caller created this store failing closed: check the file now.
            let loaded = policy_file::load(&abs)?;
            store.apply_source(&loaded.bytes)?;
        }
        Ok(McpCors {
            store,
            source: Some(source),
        })
    }

    fn remote(
        backend: Arc<dyn PolicyBackend>,
        cache: Option<std::path::PathBuf>,
        fail_closed: bool,
    ) -> Result<McpCors, Error> {
        let name = backend.name();
        let (source, store) = source::watched_remote(backend, cache, fail_closed)?;
        let status = store.status();
        if !fail_closed && !status.loaded {
            // Another caller created this store failing closed, and it still is.
            let why = status
                .last_error
                .map_or_else(|| "no policy read yet".to_owned(), |e| e.message);
            return Err(Error::Unreachable {
                name,
                source: crate::source::BackendError::message(why),
            });
        }
        Ok(McpCors {
            store,
            source: Some(source),
        })
    }

    /// The policy serving requests now.
    ///
    /// ```
    /// use mcp_cors::{McpCors, Policy};
    ///
    /// let cors = McpCors::from_policy(Policy::default());
    /// assert!(cors.policy().settings().allowed_origins.is_empty());
    /// ```
    pub fn policy(&self) -> Arc<Policy> {
        self.store.load_full()
    }

    /// Where the policy came from, how many reloads there were, and the last refused
    /// file (kept until a good one is applied).
    pub fn status(&self) -> ReloadStatus {
        self.store.status()
    }

    /// The admin socket this middleware's policy is served on, if any.
    pub fn admin_socket(&self) -> Option<std::path::PathBuf> {
        self.source.as_ref().and_then(|s| s.admin_socket())
    }

    /// Whether two middlewares share one policy store (and so one watcher).
    pub fn shares_policy_with(&self, other: &McpCors) -> bool {
        Arc::ptr_eq(&self.store, &other.store)
    }

    /// Replaces the policy for every clone of this middleware, atomically: requests already
    /// decided finish under the old policy, every later one sees the new one. For a watched
    /// file, the next change to the file replaces it again.
    ///
    /// ```
    /// use mcp_cors::{McpCors, Policy};
    ///
    /// let cors = McpCors::from_policy(Policy::default());
    /// let worker_copy = cors.clone();
    /// cors.replace_policy(Policy::from_toml_str(r#"allowed_origins = ["http://localhost:*"]"#)?);
    /// assert_eq!(worker_copy.policy().settings().allowed_origins, ["http://localhost:*"]);
    /// # Ok::<(), mcp_cors::PolicyError>(())
    /// ```
    pub fn replace_policy(&self, policy: Policy) {
        self.store.replace(policy);
    }
}

impl<S, B> Transform<S, ServiceRequest> for McpCors
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Transform = McpCorsMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        future::ready(Ok(McpCorsMiddleware {
            service,
            policy: RefCell::new(Cache::new(CurrentPolicy(Arc::clone(&self.store)))),
            events: self.store.events().worker(),
            store: Arc::clone(&self.store),
            _source: self.source.clone(),
        }))
    }
}

/// The per-worker service built by [`McpCors`]; not used directly.
pub struct McpCorsMiddleware<S> {
    service: S,
    /// This worker's copy of the current policy: checking that it is still current is one
    /// plain load, where loading from the `ArcSwap` itself takes atomic read-modify-writes
    /// on every request.
    policy: RefCell<Cache<CurrentPolicy, Arc<Policy>>>,
    /// This worker's run of allows, folded before listeners see it.
    events: Arc<WorkerEvents>,
    store: Arc<PolicyStore>,
    /// Keeps the watcher and the admin socket running while this worker serves.
    _source: Option<Arc<dyn Lifecycle>>,
}

impl<S> std::fmt::Debug for McpCorsMiddleware<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpCorsMiddleware")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// The store's `ArcSwap`, as an `arc_swap::Cache` wants it.
struct CurrentPolicy(Arc<PolicyStore>);

impl std::ops::Deref for CurrentPolicy {
    type Target = ArcSwap<Policy>;

    fn deref(&self) -> &ArcSwap<Policy> {
        self.0.current()
    }
}

/// How a source is named in logs.
fn describe(source: &Source) -> String {
    match source {
        Source::File(path) => path.display().to_string(),
        Source::Etcd(etcd) => etcd.name(),
    }
}

/// What the middleware answers. One body type, not an `EitherBody` of the handler's and its
/// own: actix-web's routing answers with a `BoxBody` already, which [`into_boxed`] passes
/// on as it is, so the usual stack pays for no second layer of body on every poll (only a
/// body type of an inner middleware's own is boxed, once per response).
type Answer = Result<ServiceResponse<BoxBody>, actix_web::Error>;

impl<S, B> Service<ServiceRequest> for McpCorsMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = Either<Ready<Answer>, PassThrough<S::Future, B>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        // One policy for the whole decision; the response is decorated from values taken
        // here, so a reload mid-request cannot mix two policies.
        let mut cached = self.policy.borrow_mut();
        let top = cached.load();
        let authority = req.uri().authority().map(|a| a.as_str());
        // Origin form (`POST /mcp`), the usual case, has none.
        let absolute_form = authority.is_some();
        // The route first, on the very path the router will match (see `policy::routes`);
        // that path is not even looked at for a policy without routes, the usual case.
        let route = match top.has_routes() {
            true => top.route(req.match_info().as_str()),
            false => None,
        };
        let policy: &Policy = match route {
            None => top,
            // `guard = false` (probes): no checks and no CORS headers; counted, not
            // evented. It goes on as a request without `Origin` does (one way through,
            // which keeps this function small on every request's path).
            Some(route) if !route.guard => {
                self.store.events().count_unguarded();
                drop(cached);
                return Either::Right(self.pass_through(req, None, absolute_form));
            }
            Some(route) => &route.policy,
        };
        let judged = policy.judge(req.method(), req.headers(), authority);
        let events = self.store.events();
        match &judged {
            Judged::NoOrigin => {
                drop(cached);
                return Either::Right(self.pass_through(req, None, absolute_form));
            }
            // The usual request, counted where it is: its `Decision` is never built.
            Judged::Allow { origin, listed } => {
                let bound = listed.and_then(|l| policy.counter(l));
                if events.allowed_quietly(&self.events, origin, bound) {
                    #[cfg(feature = "metrics")]
                    policy.count_allowed_metric();
                    let cors = CorsHeaders::new(policy, policy.allow_origin(origin));
                    drop(cached); // The handler runs without this worker's policy borrowed.
                    return Either::Right(self.pass_through(req, Some(cors), absolute_form));
                }
            }
            Judged::Preflight { .. } | Judged::Refuse { .. } => {}
        }
        let route = route.map(|r| &r.name);
        let peer = Peer::new(req.peer_addr(), &top.compiled().proxies);
        let outcome = self.decide_fully(policy, judged, &req, route, peer);
        drop(cached); // The handler runs without this worker's policy borrowed.
        match outcome {
            Outcome::Respond(res) => Either::Left(future::ready(Ok(req.into_response(res)))),
            Outcome::Pass(cors) => Either::Right(self.pass_through(req, cors, absolute_form)),
        }
    }
}

/// What a request other than the usual one gets: an answer of the middleware's own, or
/// the handler's, with these CORS headers (or only `Vary: Origin`).
enum Outcome {
    Respond(HttpResponse),
    Pass(Option<CorsHeaders>),
}

impl<S> McpCorsMiddleware<S> {
    /// The decision on a request that is not the usual one (a preflight, a refusal, an
    /// allowed request someone listens to or from an origin not listed exactly): built,
    /// recorded and answered. Out of line, so that the usual request's path stays small.
    #[inline(never)]
    fn decide_fully(
        &self,
        policy: &Policy,
        judged: Judged<'_>,
        req: &ServiceRequest,
        route: Option<&Arc<str>>,
        // The top level's proxies, for every route: the client belongs to the connection,
        // not to the path. Only copied here; read when needed.
        peer: Peer<'_>,
    ) -> Outcome {
        let (decision, listed) = policy.decision_of(judged, req.headers());
        self.store.events().record_routed(
            &self.events,
            &decision,
            listed.and_then(|l| policy.counter(l)),
            req.headers(),
            req.method(),
            req.path(),
            route,
            peer,
        );
        #[cfg(feature = "metrics")]
        policy.count_metrics(&decision);
        match decision {
            Decision::Refuse {
                reason,
                preflight,
                enforced: true,
            } => Outcome::Respond(response::forbidden(&reason, preflight)),
            Decision::Preflight {
                allow_origin,
                allow_headers,
                private_network,
            } => Outcome::Respond(response::preflight(
                policy,
                allow_origin,
                allow_headers,
                private_network,
            )),
            Decision::Allow { allow_origin } => {
                Outcome::Pass(Some(CorsHeaders::new(policy, allow_origin)))
            }
            Decision::NoOrigin
            | Decision::Refuse {
                enforced: false, ..
            } => Outcome::Pass(None),
        }
    }
}

/// An HTTP/1 request with an absolute-form target was judged by the target's authority;
/// RFC 9112 §3.2.2 has the server replace `Host` with it, so the handler (and actix's
/// `connection_info`) sees the host that was judged, not the one that was ignored. Called
/// only for a target with an authority: origin form, the usual case, has none and costs
/// nothing here.
#[cold]
fn host_from_target(req: &mut ServiceRequest) {
    if req.version() >= Version::HTTP_2 {
        return;
    }
    let Some(authority) = req.uri().authority() else {
        return;
    };
    // Refused when the Host guard is on; with it off, only the host part is a host.
    let host = authority.as_str().rsplit('@').next().unwrap_or_default();
    if let Ok(value) = HeaderValue::from_str(host) {
        req.headers_mut().insert(header::HOST, value);
    }
}

impl<S, B> McpCorsMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    /// Runs the handler; its answer gets `cors` (or only `Vary: Origin`), errors included.
    /// `absolute_form`: the request's target named its authority, which becomes its `Host`.
    fn pass_through(
        &self,
        mut req: ServiceRequest,
        cors: Option<CorsHeaders>,
        absolute_form: bool,
    ) -> PassThrough<S::Future, B> {
        if absolute_form {
            host_from_target(&mut req);
        }
        PassThrough {
            call: self.service.call(req),
            cors,
            body: PhantomData,
        }
    }
}

pin_project! {
    /// The handler's future, decorating whatever it answers. A named future rather than a
    /// boxed one: it is on the path of every request, and costs no allocation.
    #[doc(hidden)]
    pub struct PassThrough<F, B> {
        #[pin]
        call: F,
        cors: Option<CorsHeaders>,
        body: PhantomData<B>,
    }
}

impl<F, B> Future for PassThrough<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
    B: MessageBody + 'static,
{
    type Output = Answer;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answer = ready!(this.call.poll(cx));
        let cors = this.cors.take();
        Poll::Ready(match answer {
            // The body is passed through untouched, so streams stay streams.
            Ok(mut res) => {
                response::decorate(res.headers_mut(), cors);
                Ok(into_boxed(res))
            }
            // The error becomes a response further out; make that one decorated too.
            Err(error) => Err(response::DecoratedError::new(error, cors).into()),
        })
    }
}

/// `res` with a boxed body. The usual inner service, actix's routing, answers with a
/// `BoxBody` already: that response is passed on as it is, where `map_into_boxed_body`
/// would take it apart and build it again on every request.
#[inline]
fn into_boxed<B: MessageBody + 'static>(res: ServiceResponse<B>) -> ServiceResponse<BoxBody> {
    let mut res = Some(res);
    if let Some(same) =
        (&mut res as &mut dyn Any).downcast_mut::<Option<ServiceResponse<BoxBody>>>()
    {
        if let Some(same) = same.take() {
            return same;
        }
    }
    match res {
        Some(res) => res.map_into_boxed_body(),
        // Taken above only when it was boxed already, and returned.
        None => unreachable!("a response is boxed already or still here"),
    }
}
