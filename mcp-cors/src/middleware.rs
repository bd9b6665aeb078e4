//! The actix-web middleware: [`McpCors`] (the `Transform`, cheap to clone, one per worker)
//! and the per-worker service that applies the decision to each request.

use std::rc::Rc;
use std::sync::Arc;

use actix_web::Error;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use futures_util::future::{Either, LocalBoxFuture, Ready, ready};

use crate::decision::Decision;
use crate::policy::Policy;
use crate::response::{self, CorsHeaders};
use crate::store::PolicyStore;
use crate::vary;

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
}

impl McpCors {
    /// A middleware serving a fixed policy (until [`McpCors::replace_policy`]).
    pub fn from_policy(policy: Policy) -> McpCors {
        McpCors {
            store: Arc::new(PolicyStore::new(policy)),
        }
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

    /// Replaces the policy for every clone of this middleware, atomically: requests already
    /// decided finish under the old policy, every later one sees the new one.
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
        self.store.swap(policy);
    }
}

impl<S, B> Transform<S, ServiceRequest> for McpCors
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = McpCorsMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(McpCorsMiddleware {
            service: Rc::new(service),
            store: Arc::clone(&self.store),
        }))
    }
}

/// The per-worker service built by [`McpCors`]; not used directly.
#[derive(Debug)]
pub struct McpCorsMiddleware<S> {
    service: Rc<S>,
    store: Arc<PolicyStore>,
}

type Answer<B> = Result<ServiceResponse<EitherBody<B>>, Error>;

impl<S, B> Service<ServiceRequest> for McpCorsMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = Either<Ready<Answer<B>>, LocalBoxFuture<'static, Answer<B>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        // One policy for the whole decision; the response is decorated from values taken
        // here, so a reload mid-request cannot mix two policies.
        let policy = self.store.load();
        let decision = policy.decide(
            req.method(),
            req.headers(),
            req.uri().authority().map(|a| a.as_str()),
        );
        match decision {
            Decision::Refuse {
                reason,
                preflight,
                enforced: true,
            } => {
                tracing::debug!(%reason, path = req.path(), "request refused");
                let res = response::forbidden(&reason, preflight);
                Either::Left(ready(Ok(req.into_response(res).map_into_right_body())))
            }
            Decision::Preflight {
                allow_origin,
                allow_headers,
                private_network,
            } => {
                let res =
                    response::preflight(&policy, allow_origin, allow_headers, private_network);
                Either::Left(ready(Ok(req.into_response(res).map_into_right_body())))
            }
            Decision::Allow { allow_origin } => {
                let cors = CorsHeaders::new(&policy, allow_origin);
                drop(policy);
                Either::Right(self.pass_through(req, Some(cors)))
            }
            Decision::NoOrigin
            | Decision::Refuse {
                enforced: false, ..
            } => {
                drop(policy);
                Either::Right(self.pass_through(req, None))
            }
        }
    }
}

impl<S, B> McpCorsMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    /// Runs the handler and adds `cors` (or only `Vary: Origin`) to whatever it answers,
    /// errors included. The body is passed through untouched, so streams stay streams.
    fn pass_through(
        &self,
        req: ServiceRequest,
        cors: Option<CorsHeaders>,
    ) -> LocalBoxFuture<'static, Answer<B>> {
        // Kept to build a response if the inner service fails with an `Err` rather than an
        // error response: that response must carry the CORS headers too.
        let http_req = req.request().clone();
        let call = self.service.call(req);
        Box::pin(async move {
            let mut res = match call.await {
                Ok(res) => res.map_into_left_body(),
                Err(err) => ServiceResponse::from_err(err, http_req).map_into_right_body(),
            };
            let headers = res.headers_mut();
            match cors {
                Some(cors) => cors.apply(headers),
                None => vary::add(headers, "Origin"),
            }
            Ok(res)
        })
    }
}
