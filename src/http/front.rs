//! The front door of a listener: every request goes to the axum router, except the Messages API
//! calls (`POST /v1/messages` and `/v1/messages/count_tokens`) on an API listener, which go
//! straight to their handler. They are nearly every request a relay serves, and going through
//! the router's matching, boxing and layers cost ~4 % of the relay's CPU a request. Everything
//! else about them is the router's: the same handler, the same client-key check, and other
//! methods on those paths still get the router's 405.

use std::convert::Infallible;
use std::future::{Future, ready};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::FutureExt;
use http::{Method, Request};
use tower::ServiceExt;

use super::{AppState, auth, messages};
use crate::error::ApiError;
use crate::upstream::Endpoint;

/// A listener's service (see the module documentation).
#[derive(Clone)]
pub struct App {
    router: Router,
    /// The API's state, on a listener that serves the API.
    api: Option<AppState>,
}

impl App {
    pub(super) fn new(router: Router, api: Option<AppState>) -> Self {
        App { router, api }
    }

    /// The Messages API endpoint `request` calls, when this listener serves the API.
    fn messages_endpoint<B>(&self, request: &Request<B>) -> Option<(AppState, Endpoint)> {
        let state = self.api.as_ref()?;
        if request.method() != Method::POST {
            return None;
        }
        let endpoint = match request.uri().path() {
            "/v1/messages" => Endpoint::Messages,
            "/v1/messages/count_tokens" => Endpoint::CountTokens,
            _ => return None,
        };
        Some((state.clone(), endpoint))
    }
}

impl<B> tower::Service<Request<B>> for App
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let request = request.map(Body::new);
        let Some((state, endpoint)) = self.messages_endpoint(&request) else {
            return Box::pin(self.router.clone().oneshot(request));
        };
        if !auth::admitted(&state.settings().client_keys, request.headers()) {
            return Box::pin(ready(Ok(ApiError::unauthenticated().into_response())));
        }
        // The handler's future is boxed as it is: an async block around it would copy its
        // (several kilobytes of) state once more on every request.
        Box::pin(messages::relay(State(state), request, endpoint).map(Ok))
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("serves_api", &self.api.is_some())
            .finish_non_exhaustive()
    }
}
