//! Promotions at work in an application: a basket calculated, the promotions a product
//! page can announce, and an order placed (codes redeemed, budgets spent, the `order`
//! activity recorded, all at once).

use std::str::FromStr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cohort_app::promotions::service::{BasketRequest, Quote};
use cohort_core::promotion::record::PromotionCode;
use cohort_core::{ActivityId, Basket, Currency, CustomerId, Decimal, Invalid, OrderItem, PromotionId};
use cohort_engine::promotion::{ProductQuery, Reason};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Auth, Ingest, Read};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::json::Json;
use crate::problem::{ApiResult, Code, Problem, ProblemDocument};
use crate::routes::services::app_id;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(calculate))
        .routes(routes!(product_promotions))
        .routes(routes!(place_order))
}

/// A basket line. Prices are decimal strings (or JSON numbers) with at most the
/// currency's minor-unit decimals.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemBody {
    pub sku: String,
    #[serde(default)]
    pub categories: Vec<String>,
    pub quantity: i64,
    #[schema(value_type = String, example = "19.99")]
    pub unit_price: Value,
}

/// A basket to calculate.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BasketBody {
    /// The customer's id; absent for an anonymous visitor.
    pub customer: Option<String>,
    /// ISO 4217.
    pub currency: String,
    #[serde(default)]
    pub items: Vec<ItemBody>,
    #[schema(value_type = Option<String>, example = "4.90")]
    pub shipping: Option<Value>,
    /// Promotion codes entered, in order.
    #[serde(default)]
    pub codes: Vec<String>,
    #[serde(default)]
    pub explain: Explain,
}

/// How much the answer says of the promotions that did not apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Explain {
    /// Nothing: `not_applied` is empty.
    None,
    /// Each one's id, reason code and subject (the default).
    #[default]
    Reasons,
    /// Also its name and the reason as a sentence.
    Full,
}

/// An order to place: a basket, with an optional id (placing the same id again
/// returns the first answer) and the total the customer was shown.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderBody {
    /// Chosen by the shop for safe retries; generated when absent.
    pub id: Option<String>,
    pub customer: Option<String>,
    pub currency: String,
    #[serde(default)]
    pub items: Vec<ItemBody>,
    #[schema(value_type = Option<String>)]
    pub shipping: Option<Value>,
    #[serde(default)]
    pub codes: Vec<String>,
    #[serde(default)]
    pub explain: Explain,
    /// When given, the order is refused (409, nothing stored) unless its total is this.
    #[schema(value_type = Option<String>)]
    pub expected_total: Option<Value>,
}

fn money(field: &str, value: &Value) -> Result<Decimal, Invalid> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(Invalid::new(field, "expected a decimal number")),
    };
    Decimal::from_str(&text).map_err(|_| Invalid::new(field, "expected a decimal number"))
}

fn basket_request(
    customer: Option<&str>,
    currency: &str,
    items: &[ItemBody],
    shipping: Option<&Value>,
    codes: &[String],
) -> Result<BasketRequest, Invalid> {
    let customer = customer.map(|c| CustomerId::parse("customer", c)).transpose()?;
    let currency = Currency::parse("currency", currency)?;
    let items = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = format!("items[{i}]");
            let price = money(&format!("{field}.unit_price"), &item.unit_price)?;
            OrderItem::new(&field, &item.sku, item.quantity, price, item.categories.clone())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let shipping = shipping
        .map(|s| money("shipping", s))
        .transpose()?
        .unwrap_or(Decimal::ZERO);
    let basket = Basket::new(currency, items, shipping)?;
    if codes.len() > 20 {
        return Err(Invalid::new("codes", "at most 20 codes"));
    }
    let codes = codes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if c.len() > 256 {
                return Err(Invalid::new(format!("codes[{i}]"), "at most 256 characters"));
            }
            Ok((c.clone(), PromotionCode::parse("code", c).ok()))
        })
        .collect::<Result<_, _>>()?;
    Ok(BasketRequest {
        customer,
        basket,
        codes,
    })
}

/// A money amount: a decimal string, written straight into the answer.
#[derive(Debug, Clone, Copy)]
pub struct Amount(Decimal);

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// What a reason names — a segment, a service, a promotion or a code — written
/// straight into the answer.
#[derive(Clone, Copy)]
pub struct Subject<'a>(&'a dyn std::fmt::Display);

impl std::fmt::Debug for Subject<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0.to_string())
    }
}

impl Serialize for Subject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

/// One promotion's part of a line.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineDiscountBody {
    pub promotion: i64,
    pub kind: &'static str,
    #[schema(value_type = String)]
    pub amount: Amount,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LineBody<'a> {
    pub sku: &'a str,
    pub quantity: u32,
    #[schema(value_type = String)]
    pub unit_price: Amount,
    #[schema(value_type = String)]
    pub subtotal: Amount,
    #[schema(value_type = String)]
    pub discount: Amount,
    #[schema(value_type = String)]
    pub total: Amount,
    pub discounts: Vec<LineDiscountBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GiftBody<'a> {
    pub promotion: i64,
    pub sku: &'a str,
    pub quantity: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppliedBody<'a> {
    pub promotion: i64,
    pub name: &'a str,
    pub kind: &'static str,
    /// What it took off (0 for a gift).
    #[schema(value_type = String)]
    pub amount: Amount,
    pub code: Option<&'a str>,
}

/// Why a promotion did not apply: a stable `code` (`not_started`, `ended`, `currency`,
/// `anonymous_customer`, `not_in_target_group`, `segment_not_available`,
/// `service_did_not_answer`, `condition`, `code_missing`, `code_expired`,
/// `code_used_up`, `code_used_up_by_customer`, `code_needs_customer`, `budget_spent`,
/// `nothing_to_discount`, `excluded`, `not_combinable`) and a sentence.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotAppliedBody<'a> {
    pub promotion: i64,
    pub reason: &'static str,
    /// With `"explain": "full"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    /// The reason as a sentence, with `"explain": "full"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The segment, service or promotion the reason names.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub subject: Option<Subject<'a>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CodeBody<'a> {
    pub code: &'a str,
    /// `applied`, `unknown`, `expired`, `used_up`, `used_up_by_customer`,
    /// `needs_customer` or `not_applicable`.
    pub status: &'static str,
}

/// A calculated basket. Money is decimal strings rounded to the currency's minor unit.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalculationBody<'a> {
    /// The order's id (orders only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<&'a str>,
    pub currency: &'a str,
    pub lines: Vec<LineBody<'a>>,
    pub gifts: Vec<GiftBody<'a>>,
    #[schema(value_type = String)]
    pub subtotal: Amount,
    #[schema(value_type = String)]
    pub item_discount: Amount,
    #[schema(value_type = String)]
    pub order_discount: Amount,
    #[schema(value_type = String)]
    pub shipping: Amount,
    #[schema(value_type = String)]
    pub shipping_discount: Amount,
    #[schema(value_type = String)]
    pub shipping_total: Amount,
    #[schema(value_type = String)]
    pub total: Amount,
    /// In the order they applied.
    pub applied: Vec<AppliedBody<'a>>,
    /// Every other promotion considered, in rank order, with why it did not apply
    /// (as much as `explain` asks for).
    pub not_applied: Vec<NotAppliedBody<'a>>,
    pub codes: Vec<CodeBody<'a>>,
    /// Segmentation services of the application that did not answer: promotions for
    /// their segments could not qualify.
    pub unanswered_services: Vec<&'a str>,
}

fn name_of(quote: &Quote, id: PromotionId) -> &str {
    quote
        .loaded
        .catalog
        .get(id)
        .map(|p| p.name.as_str())
        .unwrap_or_default()
}

fn subject(reason: &Reason) -> Option<Subject<'_>> {
    match reason {
        Reason::SegmentNotAvailable(s) => Some(Subject(&**s)),
        Reason::ServiceDidNotAnswer(s) => Some(Subject(s)),
        Reason::ExcludedBy(p) | Reason::NotCombinable(p) => Some(Subject(p)),
        Reason::CodeExpired(c)
        | Reason::CodeUsedUp(c)
        | Reason::CodeUsedUpByCustomer(c)
        | Reason::CodeNeedsCustomer(c) => Some(Subject(c)),
        _ => None,
    }
}

fn calculation_body<'a>(quote: &'a Quote, order: Option<&'a ActivityId>, explain: Explain) -> CalculationBody<'a> {
    let c = &quote.calculation;
    let full = explain == Explain::Full;
    CalculationBody {
        order: order.map(ActivityId::as_str),
        currency: c.currency.code(),
        lines: c
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| LineBody {
                sku: &l.sku,
                quantity: l.quantity,
                unit_price: Amount(l.unit_price),
                subtotal: Amount(l.subtotal),
                discount: Amount(l.discount),
                total: Amount(l.total),
                discounts: c
                    .discounts_of(i)
                    .map(|d| LineDiscountBody {
                        promotion: d.promotion.get(),
                        kind: d.kind.as_str(),
                        amount: Amount(d.amount),
                    })
                    .collect(),
            })
            .collect(),
        gifts: c
            .gifts
            .iter()
            .map(|g| GiftBody {
                promotion: g.promotion.get(),
                sku: &g.sku,
                quantity: g.quantity,
            })
            .collect(),
        subtotal: Amount(c.subtotal),
        item_discount: Amount(c.item_discount),
        order_discount: Amount(c.order_discount),
        shipping: Amount(c.shipping),
        shipping_discount: Amount(c.shipping_discount),
        shipping_total: Amount(c.shipping_total),
        total: Amount(c.total),
        applied: c
            .applied
            .iter()
            .map(|a| AppliedBody {
                promotion: a.promotion.get(),
                name: name_of(quote, a.promotion),
                kind: a.kind.as_str(),
                amount: Amount(a.amount),
                code: a.code.as_deref(),
            })
            .collect(),
        not_applied: c
            .not_applied
            .iter()
            .take(if explain == Explain::None { 0 } else { usize::MAX })
            .map(|n| NotAppliedBody {
                promotion: n.promotion.get(),
                reason: n.reason.code(),
                name: full.then(|| name_of(quote, n.promotion)),
                detail: full.then(|| n.reason.to_string()),
                subject: subject(&n.reason),
            })
            .collect(),
        codes: c
            .codes
            .iter()
            .map(|r| CodeBody {
                code: &r.code,
                status: r.status.code(),
            })
            .collect(),
        unanswered_services: quote.unanswered.iter().map(|s| s.as_str()).collect(),
    }
}

/// Calculates a basket: the promotions of the application that apply, in order, what
/// each takes off, and why every other one does not. The customer's segments come from
/// the segmentation services active in the application, at this moment.
#[utoipa::path(post, path = "/v1/applications/{app}/baskets/calculate", tag = "promotions",
    params(("app" = String, Path)), request_body = BasketBody, security(("bearer" = ["read"])),
    responses((status = 200, body = CalculationBody), (status = 400, body = ProblemDocument),
        (status = 404, body = ProblemDocument)))]
async fn calculate(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath(app): ApiPath<String>,
    ApiJson(b): ApiJson<BasketBody>,
) -> ApiResult<Response> {
    let app = app_id(&app)?;
    let request = basket_request(
        b.customer.as_deref(),
        &b.currency,
        &b.items,
        b.shipping.as_ref(),
        &b.codes,
    )?;
    let quote = state.app.promotions.calculate(&app, &request).await?;
    Ok(Json(calculation_body(&quote, None, b.explain)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductParams {
    /// The customer's id; absent for an anonymous visitor.
    pub customer: Option<String>,
    /// The product's categories, comma-separated.
    pub categories: Option<String>,
    /// The currency its price is shown in (default: the application's).
    pub currency: Option<String>,
}

/// A promotion a product page can announce.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfferBody {
    pub promotion: i64,
    pub name: String,
    pub description: String,
    pub kind: String,
    /// Its conditions read the basket: it may or may not apply at checkout.
    pub depends_on_basket: bool,
    /// It needs a code.
    pub requires_code: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OffersBody {
    pub sku: String,
    pub promotions: Vec<OfferBody>,
    pub unanswered_services: Vec<String>,
}

/// The promotions that can apply to this product for this customer, in rank order.
#[utoipa::path(get, path = "/v1/applications/{app}/products/{sku}/promotions", tag = "promotions",
    params(("app" = String, Path), ("sku" = String, Path), ProductParams), security(("bearer" = ["read"])),
    responses((status = 200, body = OffersBody), (status = 400, body = ProblemDocument),
        (status = 404, body = ProblemDocument)))]
async fn product_promotions(
    _: Auth<Read>,
    State(state): State<AppState>,
    ApiPath((app, sku)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<ProductParams>,
) -> ApiResult<Json<OffersBody>> {
    let app = app_id(&app)?;
    let query_problem = |e: Invalid| Problem::new(Code::InvalidQuery).field(e.field).detail(e.reason);
    let sku = cohort_core::promotion::product_key("sku", &sku).map_err(Problem::invalid)?;
    let customer = q
        .customer
        .as_deref()
        .map(|c| CustomerId::parse("customer", c))
        .transpose()
        .map_err(query_problem)?;
    let categories: Vec<String> = q
        .categories
        .as_deref()
        .map(|c| {
            c.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let currency = match q.currency.as_deref() {
        Some(c) => Currency::parse("currency", c).map_err(query_problem)?,
        None => {
            state
                .app
                .store
                .application(&app)
                .await?
                .ok_or_else(|| cohort_store::StoreError::not_found("application", &app))?
                .default_currency
        }
    };
    let query = ProductQuery {
        sku: &sku,
        categories: &categories,
        currency,
    };
    let (loaded, offers, unanswered) = state
        .app
        .promotions
        .for_product(&app, customer.as_ref(), &query)
        .await?;
    let promotions = offers
        .into_iter()
        .filter_map(|(id, depends_on_basket, requires_code)| {
            let p = loaded.catalog.get(id)?;
            Some(OfferBody {
                promotion: id.get(),
                name: p.name.as_str().to_owned(),
                description: p.description.clone(),
                kind: p.kind().as_str().to_owned(),
                depends_on_basket,
                requires_code,
            })
        })
        .collect();
    Ok(Json(OffersBody {
        sku,
        promotions,
        unanswered_services: unanswered.iter().map(ToString::to_string).collect(),
    }))
}

/// Places an order: calculates it, then in one transaction redeems its codes within
/// their limits, spends its promotions' budgets and records the `order` activity (which
/// feeds the segment builders). A code or budget taken by a concurrent order is
/// noticed and the order recalculated. 201 with the calculation; 200 with the first
/// answer when an order with this id was placed before.
#[utoipa::path(post, path = "/v1/applications/{app}/orders", tag = "promotions",
    params(("app" = String, Path)), request_body = OrderBody, security(("bearer" = ["ingest"])),
    responses((status = 201, body = CalculationBody), (status = 200, body = CalculationBody),
        (status = 400, body = ProblemDocument), (status = 404, body = ProblemDocument),
        (status = 409, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn place_order(
    _: Auth<Ingest>,
    State(state): State<AppState>,
    ApiPath(app): ApiPath<String>,
    ApiJson(b): ApiJson<OrderBody>,
) -> ApiResult<Response> {
    let app = app_id(&app)?;
    let id = b.id.as_deref().map(|i| ActivityId::parse("id", i)).transpose()?;
    let request = basket_request(
        b.customer.as_deref(),
        &b.currency,
        &b.items,
        b.shipping.as_ref(),
        &b.codes,
    )?;
    let expected = b
        .expected_total
        .as_ref()
        .map(|v| money("expected_total", v))
        .transpose()?;
    let placed = state
        .app
        .promotions
        .place_order(&app, id, &request, expected, |id, quote| {
            serde_json::to_string(&calculation_body(quote, Some(id), b.explain)).expect("a calculation serializes")
        })
        .await?;
    let status = if placed.again {
        StatusCode::OK
    } else {
        if request.customer.is_some() {
            // The order's activity, as one recorded through /v1/activities.
            state.app.automation.after_recording(1).await;
        }
        StatusCode::CREATED
    };
    Ok((
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        placed.answer,
    )
        .into_response())
}
