//! `POST /v1/applications/{app}/context`: the decision for one request of a visitor —
//! called by the website tracker (`cohort.js`) with the application's public key, or by
//! a site's server. The body may be sent as `text/plain` so that browsers send it
//! without a preflight.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use cohort_app::targeting::tokens::MAX_TTL_MICROS;
use cohort_app::targeting::{ContextAnswer, ContextRequest};
use cohort_core::targeting::{SnippetPlace, SnippetPosition};
use cohort_core::{ApplicationId, CustomerId, SegmentId, Timestamp, VisitorId};
use cohort_engine::targeting::Outcome;
use cohort_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Auth, Ingest, PublicKey};
use crate::extract::{ApiJson, ApiPath, ApiQuery, body_problem, parse_json};
use crate::json::Json;
use crate::problem::{ApiResult, Code, Problem, ProblemDocument};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(context))
        .routes(routes!(customer_token))
}

/// A visitor's request. Headers fill what the body leaves out: `User-Agent`,
/// `Accept-Language`, and the connection's address for `ip`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextBody {
    /// The visitor's id as cohort gave it; without one cohort issues a new id.
    pub visitor: Option<String>,
    /// The logged-in customer (a login links the visitor to it). Only a server's key
    /// (`ingest`, `admin`) may name one; browsers send `customer_token`.
    pub customer: Option<String>,
    /// The logged-in customer as a token the site's server obtained from
    /// `POST /v1/applications/{app}/customer-tokens`.
    pub customer_token: Option<String>,
    pub url: String,
    pub referrer: Option<String>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// An `Accept-Language` value (`de-AT,de;q=0.9,en;q=0.5`).
    pub languages: Option<String>,
    /// Segments the page is tagged with: each is tracked for the visitor.
    #[serde(default)]
    pub segments: Vec<i64>,
    /// Content slots: per slot, the target groups (names or ids) it has a variant for.
    #[serde(default)]
    pub slots: BTreeMap<String, Vec<String>>,
    /// `false`: the visitor declined tracking; decided without keeping anything.
    pub consent: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContextParams {
    /// The application's public key, for browsers that cannot send a header (read by
    /// the `PublicKey` extractor; declared here for the OpenAPI document).
    #[allow(dead_code)]
    pub key: Option<String>,
    /// `true`: say for each active rule whether it fired, did not match, or had fired
    /// already in its scope (a server's key only: rule names are not for browsers).
    #[serde(default)]
    pub explain: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupWeight {
    pub id: i64,
    pub name: String,
    pub weight: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeldSegment {
    pub id: i64,
    pub name: String,
    pub counter: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrackedCount {
    pub id: i64,
    pub count: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContextSegments {
    /// The logged-in customer's segments in the application.
    pub customer: Vec<HeldSegment>,
    /// The visitor's tracked segment counts.
    pub tracked: Vec<TrackedCount>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SnippetBody {
    pub rule: i64,
    pub html: String,
    /// `head` or `body`.
    pub place: &'static str,
    /// `beginning`, `end` or `replace`.
    pub position: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RedirectBody {
    pub rule: i64,
    pub url: String,
    pub status: u16,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleOutcome {
    pub rule: i64,
    pub name: String,
    /// `fired`, `not_matched` or `already_fired`.
    pub outcome: &'static str,
}

/// The decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContextAnswerBody {
    /// `null` when the visitor declined tracking.
    pub visitor: Option<String>,
    pub new_visitor: bool,
    pub new_session: bool,
    /// The target groups that apply, highest weight first.
    pub target_groups: Vec<GroupWeight>,
    pub segments: ContextSegments,
    /// Code snippets to insert.
    pub snippets: Vec<SnippetBody>,
    /// A redirect to perform (then nothing else).
    pub redirect: Option<RedirectBody>,
    /// Per slot, the chosen variant's target group as the request named it; `null`:
    /// the default.
    #[schema(value_type = Object)]
    pub variants: BTreeMap<String, Option<String>>,
    /// Rules that fired, by id, in order.
    pub fired: Vec<i64>,
    /// With `explain=true`: every active rule and what became of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Vec<RuleOutcome>>,
}

/// The connection's peer address, when the server knows it.
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

/// Decides a visitor's request: target groups, segments, code snippets, a redirect
/// and the content variants. Needs the application's public key; browsers must come
/// from one of its allowed origins.
#[utoipa::path(post, path = "/v1/applications/{app}/context", tag = "targeting",
    params(("app" = String, Path), ContextParams), request_body = ContextBody,
    security(("bearer" = ["public:{app}"])),
    responses((status = 200, body = ContextAnswerBody), (status = 400, body = ProblemDocument),
        (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn context(
    PublicKey { app, trusted }: PublicKey,
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ContextParams>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<ContextAnswerBody>> {
    let body = body.map_err(body_problem)?;
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if !matches!(essence.as_deref(), Some("application/json" | "text/plain")) {
        return Err(Problem::new(Code::UnsupportedMediaType).detail("expected application/json or text/plain"));
    }
    let mut body: ContextBody = parse_json(&body)?;
    if state.app.targeting.allowed_origins(&app).await?.is_none() {
        return Err(Problem::new(Code::NotFound).detail(format!("application {app} does not exist")));
    }
    if !trusted && body.customer.is_some() {
        return Err(Problem::new(Code::Forbidden)
            .field("customer")
            .detail("a public key names the logged-in customer with customer_token"));
    }
    if !trusted && params.explain {
        return Err(Problem::new(Code::Forbidden)
            .field("explain")
            .detail("explanations need a server's key"));
    }
    if let Some(token) = body.customer_token.take() {
        if body.customer.is_some() {
            return Err(Problem::new(Code::InvalidField)
                .field("customer_token")
                .detail("give customer or customer_token, not both"));
        }
        let customer = state.app.targeting.tokens.verify(&app, &token, state.app.now())?;
        body.customer = Some(customer.into_string());
    }
    let request = context_request(body, &headers, peer, params.explain)?;
    let answer = state.app.targeting.decide(&app, request).await?;
    Ok(Json(answer_body(answer)))
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn context_request(
    body: ContextBody,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    explain: bool,
) -> Result<ContextRequest, Problem> {
    check_limits(&body)?;
    let visitor = body
        .visitor
        .map(|v| VisitorId::parse("visitor", &v))
        .transpose()
        .map_err(Problem::invalid)?;
    let customer = body
        .customer
        .filter(|c| !c.is_empty())
        .map(|c| CustomerId::parse("customer", &c))
        .transpose()
        .map_err(Problem::invalid)?;
    let ip = match body.ip {
        Some(ip) => Some(ip.parse::<IpAddr>().map_err(|_| {
            Problem::new(Code::InvalidField)
                .field("ip")
                .detail("expected an IPv4 or IPv6 address")
        })?),
        None => peer,
    };
    let languages = body
        .languages
        .as_deref()
        .or_else(|| header_text(headers, header::ACCEPT_LANGUAGE))
        .map(accept_language)
        .unwrap_or_default();
    Ok(ContextRequest {
        visitor,
        customer,
        url: body.url,
        referrer: body.referrer,
        user_agent: body
            .user_agent
            .or_else(|| header_text(headers, header::USER_AGENT).map(str::to_owned)),
        ip,
        languages,
        page_segments: body.segments.into_iter().map(SegmentId::new).collect(),
        slots: body.slots.into_iter().collect(),
        tracking: body.consent.unwrap_or(true),
        explain,
    })
}

/// Bounds on what a visitor's request may carry (the endpoint is public).
fn check_limits(body: &ContextBody) -> Result<(), Problem> {
    let too_long = |field: &str, text: Option<&String>, max: usize| {
        text.filter(|t| t.len() > max).map(|_| {
            Problem::new(Code::InvalidField)
                .field(field)
                .detail(format!("at most {max} bytes"))
        })
    };
    let long = too_long("url", Some(&body.url), 8_192)
        .or_else(|| too_long("referrer", body.referrer.as_ref(), 8_192))
        .or_else(|| too_long("user_agent", body.user_agent.as_ref(), 1_024))
        .or_else(|| too_long("languages", body.languages.as_ref(), 512));
    if let Some(problem) = long {
        return Err(problem);
    }
    if body.segments.len() > 32 {
        return Err(Problem::new(Code::InvalidField)
            .field("segments")
            .detail("at most 32 segments"));
    }
    if let Some(i) = body.segments.iter().position(|s| *s < 1) {
        return Err(Problem::new(Code::InvalidField)
            .field(format!("segments[{i}]"))
            .detail("expected a segment id"));
    }
    if body.slots.len() > 32 {
        return Err(Problem::new(Code::InvalidField)
            .field("slots")
            .detail("at most 32 slots"));
    }
    for (slot, names) in &body.slots {
        if slot.is_empty() || slot.len() > 100 || names.len() > 16 || names.iter().any(|n| n.len() > 100) {
            return Err(Problem::new(Code::InvalidField)
                .field(format!("slots.{slot}"))
                .detail("a slot name of 1 to 100 bytes with at most 16 variant names of at most 100 bytes"));
        }
    }
    Ok(())
}

/// Asks for a token naming a logged-in customer, for the site's pages to send to the
/// context endpoint (`customer_token`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub customer: String,
    /// How long the token is valid, in minutes (default 1440, at most 43200).
    pub ttl_minutes: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenBody {
    pub token: String,
    pub customer: String,
    pub expires_at: String,
}

/// Issues a customer token: the site's server calls this when a customer logs in and
/// gives the token to its pages (it names this customer in this application only).
#[utoipa::path(post, path = "/v1/applications/{app}/customer-tokens", tag = "targeting",
    params(("app" = String, Path)), request_body = TokenRequest, security(("bearer" = ["ingest"])),
    responses((status = 201, body = TokenBody), (status = 400, body = ProblemDocument),
        (status = 404, body = ProblemDocument)))]
async fn customer_token(
    _: Auth<Ingest>,
    State(state): State<AppState>,
    ApiPath(app): ApiPath<String>,
    ApiJson(body): ApiJson<TokenRequest>,
) -> ApiResult<(StatusCode, Json<TokenBody>)> {
    let app = ApplicationId::parse("app", &app).map_err(Problem::invalid)?;
    let customer = CustomerId::parse("customer", &body.customer).map_err(Problem::invalid)?;
    let minutes = body.ttl_minutes.unwrap_or(1_440);
    if minutes == 0 || i64::from(minutes) * 60 * 1_000_000 > MAX_TTL_MICROS {
        return Err(Problem::new(Code::InvalidField)
            .field("ttl_minutes")
            .detail("1 to 43200 minutes"));
    }
    if state.app.store.application(&app).await?.is_none() {
        return Err(StoreError::not_found("application", &app).into());
    }
    let expires = Timestamp::from_unix_micros(state.app.now().unix_micros() + i64::from(minutes) * 60 * 1_000_000);
    let token = state.app.targeting.tokens.issue(&app, &customer, expires);
    Ok((
        StatusCode::CREATED,
        Json(TokenBody {
            token,
            customer: customer.into_string(),
            expires_at: expires.to_rfc3339(),
        }),
    ))
}

/// The languages of an `Accept-Language` value, preferred first, lower case (`*` and
/// `q=0` left out).
pub fn accept_language(value: &str) -> Vec<String> {
    let mut weighted: Vec<(f32, usize, String)> = value
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut pieces = part.split(';');
            let tag = pieces.next()?.trim().to_ascii_lowercase();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()))
                .unwrap_or(1.0);
            (!tag.is_empty() && tag != "*" && q > 0.0).then_some((q, i, tag))
        })
        .take(16)
        .collect();
    weighted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    weighted.into_iter().map(|(_, _, tag)| tag).collect()
}

fn answer_body(answer: ContextAnswer) -> ContextAnswerBody {
    let decision = &answer.decision;
    let rule_name = |id: cohort_core::targeting::RuleId| {
        answer
            .compiled
            .rule_names
            .get(&id)
            .map(|n| n.as_str().to_owned())
            .unwrap_or_default()
    };
    ContextAnswerBody {
        visitor: answer.visitor.map(VisitorId::into_string),
        new_visitor: answer.new_visitor,
        new_session: decision.new_session,
        target_groups: answer
            .target_groups
            .iter()
            .map(|(id, name, weight)| GroupWeight {
                id: id.get(),
                name: name.clone(),
                weight: *weight,
            })
            .collect(),
        segments: ContextSegments {
            customer: answer
                .customer_segments
                .iter()
                .map(|s| HeldSegment {
                    id: s.id.get(),
                    name: s.name.clone(),
                    counter: s.counter,
                })
                .collect(),
            tracked: answer
                .tracked
                .iter()
                .map(|(id, count)| TrackedCount {
                    id: id.get(),
                    count: *count,
                })
                .collect(),
        },
        snippets: decision
            .snippets
            .iter()
            .map(|s| SnippetBody {
                rule: s.rule.get(),
                html: s.html.clone(),
                place: match s.place {
                    SnippetPlace::Head => "head",
                    SnippetPlace::Body => "body",
                },
                position: match s.position {
                    SnippetPosition::Beginning => "beginning",
                    SnippetPosition::End => "end",
                    SnippetPosition::Replace => "replace",
                },
            })
            .collect(),
        redirect: decision.redirect.as_ref().map(|r| RedirectBody {
            rule: r.rule.get(),
            url: r.url.clone(),
            status: r.status,
        }),
        variants: answer.variants.into_iter().collect(),
        fired: decision.fired.iter().map(|r| r.get()).collect(),
        explanation: (!decision.explanation.is_empty() || answer.explained).then(|| {
            decision
                .explanation
                .iter()
                .map(|(rule, outcome)| RuleOutcome {
                    rule: rule.get(),
                    name: rule_name(*rule),
                    outcome: match outcome {
                        Outcome::Fired => "fired",
                        Outcome::NotMatched => "not_matched",
                        Outcome::AlreadyFired => "already_fired",
                    },
                })
                .collect()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_is_ordered_by_quality() {
        assert_eq!(accept_language("de-AT,de;q=0.9,en;q=0.5"), ["de-at", "de", "en"]);
        assert_eq!(accept_language("en;q=0.5, FR , *;q=0.1, it;q=0"), ["fr", "en"]);
        assert!(accept_language("").is_empty());
    }
}
