//! The route table: every route the server registers, built from
//! [`ROUTES`] alone (docs/openapi.json lists exactly these; a test compares).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::IntoResponse;
use axum::routing::{on, MethodFilter};

use super::api::{Answer, ApiError, ServerState};
use super::{batch, reads, subscribe, writes};
use crate::wire;

/// What a route does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /v1/health`.
    Health,
    /// `POST /v1/runs`.
    Begin,
    /// `GET /v1/runs`.
    Runs,
    /// `GET /v1/runs/{k}`.
    RunInfo,
    /// `GET /v1/runs/{k}/state`.
    State,
    /// `POST /v1/runs/{k}/resume`.
    Resume,
    /// `POST /v1/resume-latest`.
    ResumeLatest,
    /// `POST /v1/runs/{k}/events`.
    Append,
    /// `POST /v1/appends`.
    Appends,
    /// `GET /v1/runs/{k}/events`.
    Events,
    /// `GET /v1/runs/{k}/history`.
    History,
    /// `POST /v1/runs/{k}/finish`.
    Finish,
    /// `POST /v1/runs/{k}/fork`.
    Fork,
    /// `POST /v1/runs/{k}/fanout`.
    Fanout,
    /// `POST /v1/runs/{k}/rewind`.
    Rewind,
    /// `POST /v1/runs/{k}/interrupt`.
    Interrupt,
    /// `POST /v1/runs/{k}/fail`.
    Fail,
    /// `POST /v1/runs/{k}/operator-resume`.
    OperatorResume,
    /// `POST /v1/runs/{k}/snapshots/rebuild`.
    RebuildSnapshots,
    /// `GET /v1/runs/{k}/verify`.
    Verify,
    /// `GET /v1/runs/{k}/parent`.
    Parent,
    /// `GET /v1/runs/{k}/children`.
    Children,
    /// `GET /v1/runs/{k}/descendants`.
    Descendants,
    /// `GET /v1/runs/{k}/subscribe`.
    Subscribe,
    /// `GET /v1/subscribe`.
    SubscribeAll,
    /// `GET /v1/diff`.
    Diff,
    /// `GET /v1/recoverable`.
    Recoverable,
    /// `GET /v1/episodes/latest`.
    LatestEpisode,
    /// `GET /v1/episodes/next`.
    NextEpisode,
    /// `POST /v1/purge`.
    Purge,
    /// `POST /v1/import`.
    Import,
    /// `GET /v1/export`.
    Export,
    /// `POST /v1/sync`.
    Sync,
    /// `GET /v1/metrics` and `GET /metrics`.
    Metrics,
}

/// One route: its method, its path template (the syntax of `OpenAPI` and axum) and what it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path, with `{goal}/{episode}/{agent}` for a run key.
    pub path: &'static str,
    /// What it does.
    pub endpoint: Endpoint,
}

const fn route(method: &'static str, path: &'static str, endpoint: Endpoint) -> Route {
    Route { method, path, endpoint }
}

/// Every route the server registers.
pub const ROUTES: &[Route] = &[
    route("GET", "/v1/health", Endpoint::Health),
    route("POST", "/v1/runs", Endpoint::Begin),
    route("GET", "/v1/runs", Endpoint::Runs),
    route("GET", "/v1/runs/{goal}/{episode}/{agent}", Endpoint::RunInfo),
    route("GET", "/v1/runs/{goal}/{episode}/{agent}/state", Endpoint::State),
    route("POST", "/v1/runs/{goal}/{episode}/{agent}/resume", Endpoint::Resume),
    route("POST", "/v1/resume-latest", Endpoint::ResumeLatest),
    route("POST", "/v1/runs/{goal}/{episode}/{agent}/events", Endpoint::Append),
    route("POST", "/v1/appends", Endpoint::Appends),
    route("GET", "/v1/runs/{goal}/{episode}/{agent}/events", Endpoint::Events),
    route("GET", "/v1/runs/{goal}/{episode}/{agent}/history", Endpoint::History),
    route("POST", "/v1/runs/{goal}/{episode}/{agent}/finish", Endpoint::Finish),
    route("POST", "/v1/runs/{goal}/{episode}/{agent}/fork", Endpoint::Fork),
    route("POST", "/v1/runs/{goal}/{episode}/{agent}/fanout", Endpoint::Fanout),
    route("POST", "/v1/runs/{goal}/{episode}/{agent}/rewind", Endpoint::Rewind),
    route(
        "POST",
        "/v1/runs/{goal}/{episode}/{agent}/interrupt",
        Endpoint::Interrupt,
    ),
    route("POST", "/v1/runs/{goal}/{episode}/{agent}/fail", Endpoint::Fail),
    route(
        "POST",
        "/v1/runs/{goal}/{episode}/{agent}/operator-resume",
        Endpoint::OperatorResume,
    ),
    route(
        "POST",
        "/v1/runs/{goal}/{episode}/{agent}/snapshots/rebuild",
        Endpoint::RebuildSnapshots,
    ),
    route("GET", "/v1/runs/{goal}/{episode}/{agent}/verify", Endpoint::Verify),
    route("GET", "/v1/runs/{goal}/{episode}/{agent}/parent", Endpoint::Parent),
    route("GET", "/v1/runs/{goal}/{episode}/{agent}/children", Endpoint::Children),
    route(
        "GET",
        "/v1/runs/{goal}/{episode}/{agent}/descendants",
        Endpoint::Descendants,
    ),
    route(
        "GET",
        "/v1/runs/{goal}/{episode}/{agent}/subscribe",
        Endpoint::Subscribe,
    ),
    route("GET", "/v1/subscribe", Endpoint::SubscribeAll),
    route("GET", "/v1/diff", Endpoint::Diff),
    route("GET", "/v1/recoverable", Endpoint::Recoverable),
    route("GET", "/v1/episodes/latest", Endpoint::LatestEpisode),
    route("GET", "/v1/episodes/next", Endpoint::NextEpisode),
    route("POST", "/v1/purge", Endpoint::Purge),
    route("POST", "/v1/import", Endpoint::Import),
    route("GET", "/v1/export", Endpoint::Export),
    route("POST", "/v1/sync", Endpoint::Sync),
    route("GET", "/v1/metrics", Endpoint::Metrics),
    route("GET", "/metrics", Endpoint::Metrics),
];

/// The router of [`ROUTES`], with JSON answers for an unknown path or method.
pub(crate) fn router(state: Arc<ServerState>) -> axum::Router {
    let mut router = axum::Router::new();
    for route in ROUTES {
        let filter = if route.method == "POST" {
            MethodFilter::POST
        } else {
            MethodFilter::GET
        };
        let endpoint = route.endpoint;
        router = router.route(
            route.path,
            on(
                filter,
                move |State(state): State<Arc<ServerState>>, request: Request| async move {
                    match dispatch(state, endpoint, request).await {
                        Ok(response) => response,
                        Err(error) => error.into_response(),
                    }
                },
            ),
        );
    }
    router
        .fallback(|request: Request| async move {
            ApiError::transport(wire::UNKNOWN_ROUTE, format!("no route {}", request.uri().path())).into_response()
        })
        .method_not_allowed_fallback(|request: Request| async move {
            ApiError::transport(
                wire::METHOD_NOT_ALLOWED,
                format!("{} is not served on {}", request.method(), request.uri().path()),
            )
            .into_response()
        })
        .with_state(state)
}

async fn dispatch(state: Arc<ServerState>, endpoint: Endpoint, request: Request) -> Answer {
    match endpoint {
        Endpoint::Health => Ok(reads::health()),
        Endpoint::Begin => writes::begin(state, request).await,
        Endpoint::Runs => reads::runs(state, request).await,
        Endpoint::RunInfo => reads::run_info(state, request).await,
        Endpoint::State => reads::state(state, request).await,
        Endpoint::Resume => writes::resume(state, request).await,
        Endpoint::ResumeLatest => writes::resume_latest(state, request).await,
        Endpoint::Append => writes::append(state, request).await,
        Endpoint::Appends => batch::appends(state, request).await,
        Endpoint::Events => reads::events(state, request, false).await,
        Endpoint::History => reads::events(state, request, true).await,
        Endpoint::Finish => writes::finish(state, request).await,
        Endpoint::Fork => writes::fork(state, request).await,
        Endpoint::Fanout => writes::fanout(state, request).await,
        Endpoint::Rewind => writes::rewind(state, request).await,
        Endpoint::Interrupt | Endpoint::Fail | Endpoint::OperatorResume => {
            writes::operator(state, request, endpoint).await
        }
        Endpoint::RebuildSnapshots => writes::rebuild_snapshots(state, request).await,
        Endpoint::Verify => reads::verify(state, request).await,
        Endpoint::Parent => reads::parent(state, request).await,
        Endpoint::Children => reads::children(state, request, false).await,
        Endpoint::Descendants => reads::children(state, request, true).await,
        Endpoint::Subscribe => subscribe::run(state, request).await,
        Endpoint::SubscribeAll => subscribe::all(state, request).await,
        Endpoint::Diff => reads::diff(state, request).await,
        Endpoint::Recoverable => reads::recoverable(state).await,
        Endpoint::LatestEpisode => reads::latest_episode(state, request).await,
        Endpoint::NextEpisode => reads::next_episode(state, request).await,
        Endpoint::Purge => writes::purge(state, request).await,
        Endpoint::Import => writes::import(state, request).await,
        Endpoint::Export => reads::export(state, request).await,
        Endpoint::Sync => writes::sync(state).await,
        Endpoint::Metrics => Ok(reads::metrics(&state)),
    }
}
