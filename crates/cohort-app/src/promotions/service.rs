//! Promotion use cases: saving definitions (checked, with their segments available in
//! their applications), the compiled catalog kept current, basket calculations fed by
//! the segment provider, product lookups, and placing orders.
//!
//! The catalog is compiled when a definition or type priority table changes through
//! this process, and otherwise when the store's promotions version moved (looked at
//! most once a second). Which assigned segments an application provides is computed
//! per application and catalog and kept for a second; the customer's segments are
//! asked for on every calculation, so a stopped service stops qualifying at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use cohort_core::promotion::record::{CodeGroup, NewStoredPromotion, PromotionCode, StoredPromotion};
use cohort_core::{
    Activity, ActivityId, ActivityType, ApplicationId, AttributeName, AttributeValue, Attributes, Basket, CustomerId,
    Decimal, Invalid, Order, Promotion, PromotionCondition, PromotionId, PromotionTarget, QualifiedSegment, ServiceId,
    Timestamp, Tree, TypePriorities,
};
use cohort_engine::promotion::{
    Availability, Calculation, Catalog, CodeState, CodeUse, Context, EnteredCode, ProductQuery, calculate,
    product_promotions,
};
use cohort_store::{OrderOutcome, OrderPlacement, Store, StoreError, StoreResult};
use serde_json::Value;

use crate::Clock;
use crate::profiles::Cached;
use crate::provider::SegmentProvider;

use super::codes::CodeSpec;
use super::{parse_definition, parse_type_priorities};

/// How long an application's availability and a look at the store's version are trusted.
const FRESH_MICROS: i64 = 1_000_000;

/// How often an order is recalculated when a code or budget was taken meanwhile.
const ORDER_ATTEMPTS: usize = 8;

/// The compiled catalog of one promotions version.
pub struct Loaded {
    pub version: i64,
    pub catalog: Catalog,
    /// The minor-unit digits of each promotion with a budget (its currency's).
    budgets: HashMap<PromotionId, u32>,
    /// Some promotion has a first-order condition: an order's calculation then depends on
    /// the customer's order count.
    first_order: bool,
    availability: Mutex<HashMap<ApplicationId, (Timestamp, Arc<Availability>)>>,
}

/// A basket as asked about.
#[derive(Debug, Clone)]
pub struct BasketRequest {
    pub customer: Option<CustomerId>,
    pub basket: Basket,
    /// The codes entered, in order.
    pub codes: Vec<(String, Option<PromotionCode>)>,
}

/// A calculation with what it was made from.
pub struct Quote {
    pub calculation: Calculation,
    /// Services active in the application that did not answer.
    pub unanswered: Vec<ServiceId>,
    /// The customer's order count it saw (`None`: anonymous or unknown customer).
    pub orders: Option<u32>,
    pub loaded: Arc<Loaded>,
}

/// An order placed (or placed before, under the same id).
pub struct PlacedOrder {
    pub id: ActivityId,
    pub answer: String,
    /// It was placed by an earlier request: `answer` is that request's.
    pub again: bool,
}

pub struct Promotions {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    segments: Arc<SegmentProvider>,
    loaded: RwLock<Option<Arc<Loaded>>>,
    /// When the store's version was last looked at.
    checked_at: Mutex<Timestamp>,
    reload: tokio::sync::Mutex<()>,
}

impl Promotions {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, segments: Arc<SegmentProvider>) -> Self {
        Self {
            store,
            clock,
            segments,
            loaded: RwLock::new(None),
            checked_at: Mutex::new(Timestamp::from_unix_micros(i64::MIN)),
            reload: tokio::sync::Mutex::new(()),
        }
    }

    /// The current catalog.
    pub async fn current(&self) -> StoreResult<Arc<Loaded>> {
        let now = self.clock.now();
        let cached = self.loaded.read().expect("catalog lock").clone();
        if let Some(loaded) = &cached
            && now
                .unix_micros()
                .saturating_sub(self.checked_at.lock().expect("lock").unix_micros())
                < FRESH_MICROS
        {
            return Ok(loaded.clone());
        }
        let version = self.store.promotions_version().await?;
        *self.checked_at.lock().expect("lock") = now;
        match cached {
            Some(loaded) if loaded.version == version => Ok(loaded),
            _ => self.reload().await,
        }
    }

    /// Compiles the catalog from the store (after a change through this process).
    pub async fn reload(&self) -> StoreResult<Arc<Loaded>> {
        let _one = self.reload.lock().await;
        let version = self.store.promotions_version().await?;
        if let Some(loaded) = self.loaded.read().expect("catalog lock").clone()
            && loaded.version == version
        {
            return Ok(loaded);
        }
        let stored = self.store.list_promotions().await?;
        let mut priorities = HashMap::new();
        for (app, text) in self.store.type_priorities().await? {
            match serde_json::from_str(&text)
                .map_err(|e| e.to_string())
                .and_then(|v: Value| parse_type_priorities(&v).map_err(|e| e.to_string()))
            {
                Ok(table) => {
                    priorities.insert(app, table);
                }
                Err(e) => tracing::warn!(%app, error = %e, "stored type priorities skipped"),
            }
        }
        let mut promotions = Vec::with_capacity(stored.len());
        for s in &stored {
            match definition(s) {
                Ok(p) => promotions.push(p),
                Err(e) => tracing::warn!(promotion = %s.id, error = %e, "stored promotion skipped"),
            }
        }
        let budgets = promotions
            .iter()
            .filter(|p| p.budget.is_some())
            .filter_map(|p| p.currency.map(|c| (p.id, c.minor_unit_digits())))
            .collect();
        let first_order = promotions.iter().any(|p| has_first_order(&p.conditions));
        let catalog = Catalog::compile(promotions, &priorities).map_err(StoreError::Invalid)?;
        let loaded = Arc::new(Loaded {
            version,
            catalog,
            budgets,
            first_order,
            availability: Mutex::new(HashMap::new()),
        });
        *self.loaded.write().expect("catalog lock") = Some(loaded.clone());
        *self.checked_at.lock().expect("lock") = self.clock.now();
        Ok(loaded)
    }

    /// Recompiles after a change this process made. The change is stored whatever
    /// happens here: on failure the next calculation looks at the version again.
    async fn refresh(&self) {
        if let Err(e) = self.reload().await {
            tracing::warn!(error = %e, "promotion catalog not recompiled");
            *self.checked_at.lock().expect("lock") = Timestamp::from_unix_micros(i64::MIN);
        }
    }

    /// The segments available in every one of these applications (the segment picker).
    pub async fn available_segments(
        &self,
        applications: &[ApplicationId],
    ) -> StoreResult<Vec<(QualifiedSegment, String)>> {
        let mut common: Option<Vec<(QualifiedSegment, String)>> = None;
        for app in applications {
            let provided = self.segments.available_segments(app).await?;
            let here: Vec<_> = provided.segments.into_iter().map(|s| (s.qualified, s.name)).collect();
            common = Some(match common {
                None => here,
                Some(before) => before
                    .into_iter()
                    .filter(|(q, _)| here.iter().any(|(h, _)| h == q))
                    .collect(),
            });
        }
        Ok(common.unwrap_or_default())
    }

    /// Checks a definition (JSON without its id) for promotion `id`: its fields, and
    /// that each segment it targets is available in each of its applications.
    async fn check(&self, id: PromotionId, value: &Value) -> StoreResult<(Promotion, NewStoredPromotion)> {
        let promotion = parse_definition(id, value)?;
        for (i, app) in promotion.applications.iter().enumerate() {
            let missing = || {
                StoreError::dangling(
                    &format!("applications[{i}]"),
                    format!("application {app} does not exist"),
                )
            };
            let PromotionTarget::Segments(segments) = &promotion.target else {
                self.store.application(app).await?.ok_or_else(missing)?;
                continue;
            };
            let available: HashSet<QualifiedSegment> = self
                .segments
                .available_segments(app)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound { .. } => missing(),
                    other => other,
                })?
                .segments
                .into_iter()
                .map(|s| s.qualified)
                .collect();
            if let Some(i) = segments.iter().position(|s| !available.contains(s)) {
                return Err(StoreError::dangling(
                    &format!("target.segments[{i}]"),
                    format!("segment {} is not available in application {app}", segments[i]),
                ));
            }
        }
        let budget = match (promotion.budget, promotion.currency) {
            (Some(budget), Some(currency)) => Some(minor_units(budget, currency.minor_unit_digits())),
            _ => None,
        };
        let new = NewStoredPromotion {
            name: promotion.name.clone(),
            definition: value.to_string(),
            budget,
        };
        Ok((promotion, new))
    }

    pub async fn create(&self, value: &Value) -> StoreResult<StoredPromotion> {
        let (_, new) = self.check(PromotionId::new(i64::MAX), value).await?;
        let created = self.store.create_promotion(&new, self.clock.now()).await?;
        self.refresh().await;
        Ok(created)
    }

    pub async fn replace(&self, id: PromotionId, value: &Value) -> StoreResult<StoredPromotion> {
        let (_, new) = self.check(id, value).await?;
        let replaced = self.store.replace_promotion(id, &new, self.clock.now()).await?;
        self.refresh().await;
        Ok(replaced)
    }

    pub async fn delete(&self, id: PromotionId) -> StoreResult<()> {
        self.store.delete_promotion(id).await?;
        self.refresh().await;
        Ok(())
    }

    /// Sets an application's type priorities (`None`: back to the defaults).
    pub async fn set_type_priorities(&self, app: &ApplicationId, table: Option<&Value>) -> StoreResult<TypePriorities> {
        let parsed = table.map(parse_type_priorities).transpose()?.unwrap_or_default();
        self.store
            .set_type_priorities(app, table.map(Value::to_string).as_deref())
            .await?;
        self.refresh().await;
        Ok(parsed)
    }

    /// Creates a code group with its codes; generated codes that happen to exist
    /// already (in another group) are drawn again.
    pub async fn create_code_group(&self, promotion: PromotionId, spec: CodeSpec) -> StoreResult<CodeGroup> {
        let group = spec.group(promotion);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let codes = spec.codes(&mut rand::rng());
            match self.store.create_code_group(&group, &codes, self.clock.now()).await {
                Err(StoreError::Conflict { detail, .. }) if spec.chosen().is_some() => {
                    return Err(StoreError::conflict("code", detail));
                }
                Err(StoreError::Conflict { .. }) if attempts < 3 => continue,
                Err(StoreError::Conflict { .. }) => {
                    return Err(StoreError::conflict(
                        "pattern",
                        "codes drawn from this pattern kept colliding with existing ones: use a longer pattern",
                    ));
                }
                other => return other,
            }
        }
    }

    /// Which assigned segments the application provides, for this catalog.
    async fn availability(&self, loaded: &Loaded, app: &ApplicationId) -> StoreResult<Arc<Availability>> {
        let now = self.clock.now();
        if let Some((at, known)) = loaded.availability.lock().expect("lock").get(app)
            && now.unix_micros().saturating_sub(at.unix_micros()) < FRESH_MICROS
        {
            return Ok(known.clone());
        }
        let provided = self.segments.available_segments(app).await?;
        let complete = provided.unanswered.is_empty();
        let set: HashSet<QualifiedSegment> = provided.segments.into_iter().map(|s| s.qualified).collect();
        let computed = Arc::new(loaded.catalog.availability(&set));
        // Kept only when every service answered: a silent one is asked again next time.
        if complete {
            loaded
                .availability
                .lock()
                .expect("lock")
                .insert(app.clone(), (now, computed.clone()));
        }
        Ok(computed)
    }

    /// Everything a calculation or product lookup reads besides the catalog, read
    /// concurrently: the customer's segments and facts, the entered codes, the budgets
    /// spent, the application's availability.
    async fn inputs(
        &self,
        loaded: &Loaded,
        app: &ApplicationId,
        customer: Option<&CustomerId>,
        request: Option<&BasketRequest>,
    ) -> StoreResult<Inputs> {
        let segments = async {
            match customer {
                Some(c) => self
                    .segments
                    .customer_segments_and_profile(app, c)
                    .await
                    .map(|(provided, profile)| (Some(provided), profile)),
                None => Ok((None, None)),
            }
        };
        let codes = async {
            match request {
                Some(r) => self.codes(r).await,
                None => Ok(Vec::new()),
            }
        };
        let ((segments, profile), codes, spent, availability) =
            tokio::try_join!(segments, codes, self.spent(loaded), self.availability(loaded, app))?;
        let (held, unanswered) = match segments {
            Some(p) => (
                p.segments.into_iter().map(|s| s.qualified).collect(),
                p.unanswered.into_iter().map(|s| s.service).collect(),
            ),
            None => (Vec::new(), Vec::new()),
        };
        Ok(Inputs {
            held,
            unanswered,
            profile,
            codes,
            spent,
            availability,
            none: Attributes::default(),
        })
    }

    /// Calculates a basket in an application.
    pub async fn calculate(&self, app: &ApplicationId, request: &BasketRequest) -> StoreResult<Quote> {
        let loaded = self.current().await?;
        let customer = request.customer.as_ref();
        let inputs = self.inputs(&loaded, app, customer, Some(request)).await?;
        let ctx = inputs.context(self.clock.now(), app, customer);
        let calculation = calculate(&loaded.catalog, &ctx, &request.basket);
        Ok(Quote {
            calculation,
            orders: inputs.profile.as_ref().map(|p| p.profile.facts.orders),
            unanswered: inputs.unanswered,
            loaded,
        })
    }

    /// The promotions that can apply to a product for a customer, in rank order.
    pub async fn for_product(
        &self,
        app: &ApplicationId,
        customer: Option<&CustomerId>,
        query: &ProductQuery<'_>,
    ) -> StoreResult<(Arc<Loaded>, Vec<(PromotionId, bool, bool)>, Vec<ServiceId>)> {
        let loaded = self.current().await?;
        let inputs = self.inputs(&loaded, app, customer, None).await?;
        let ctx = inputs.context(self.clock.now(), app, customer);
        let offers = product_promotions(&loaded.catalog, &ctx, query)
            .into_iter()
            .map(|o| (o.promotion.id, o.depends_on_basket, o.requires_code))
            .collect();
        Ok((loaded.clone(), offers, inputs.unanswered))
    }

    /// Places an order: calculates it, and redeems its codes, spends its budgets and
    /// records its `order` activity in one transaction, recalculating when a code or a
    /// budget was taken meanwhile. With `expected_total`, a different total refuses the
    /// order (`expected_total`, conflict) and nothing is stored. `answer` renders what the
    /// client is told (kept, and told again if the order is placed again).
    pub async fn place_order(
        &self,
        app: &ApplicationId,
        id: Option<ActivityId>,
        request: &BasketRequest,
        expected_total: Option<Decimal>,
        answer: impl Fn(&ActivityId, &Quote) -> String,
    ) -> StoreResult<PlacedOrder> {
        let id = id.unwrap_or_else(crate::activities::new_activity_id);
        let forget = || {
            if let Some(customer) = &request.customer {
                self.segments.profiles.forget(customer);
            }
        };
        for _ in 0..ORDER_ATTEMPTS {
            // An order is placed on the customer as stored, not as kept in memory (its
            // order count may have moved in another process); placing it moves the count.
            forget();
            let quote = self.calculate(app, request).await?;
            let calc = &quote.calculation;
            let text = answer(&id, &quote);
            if let Some(expected) = expected_total
                && expected != calc.total
            {
                if let Some(answer) = self.store.order_answer(&id).await? {
                    return Ok(PlacedOrder {
                        id,
                        answer,
                        again: true,
                    });
                }
                return Err(StoreError::conflict(
                    "expected_total",
                    format!("the total is now {}, not {expected}", calc.total),
                ));
            }
            let placement = self.placement(&id, app, request, &quote, text.clone())?;
            match self.store.place_order(&placement).await? {
                OrderOutcome::Placed => {
                    forget();
                    return Ok(PlacedOrder {
                        id,
                        answer: text,
                        again: false,
                    });
                }
                OrderOutcome::AlreadyPlaced { answer } => {
                    return Ok(PlacedOrder {
                        id,
                        answer,
                        again: true,
                    });
                }
                taken => {
                    // A code or budget was taken, or a promotion changed elsewhere: look at
                    // the store's version again before recalculating.
                    tracing::debug!(order = %id, ?taken, "recalculating an order");
                    *self.checked_at.lock().expect("lock") = Timestamp::from_unix_micros(i64::MIN);
                }
            }
        }
        Err(StoreError::conflict(
            "codes",
            "codes or budgets of this order kept changing; try again",
        ))
    }

    fn placement(
        &self,
        id: &ActivityId,
        app: &ApplicationId,
        request: &BasketRequest,
        quote: &Quote,
        answer: String,
    ) -> StoreResult<OrderPlacement> {
        let calc = &quote.calculation;
        let at = self.clock.now();
        let redemptions = calc
            .applied
            .iter()
            .filter_map(|a| a.code.as_deref())
            .filter_map(|c| PromotionCode::parse("codes", c).ok())
            .collect();
        let spending = calc
            .applied
            .iter()
            .filter_map(|a| {
                quote
                    .loaded
                    .budgets
                    .get(&a.promotion)
                    .map(|digits| (a.promotion, minor_units(a.amount, *digits)))
            })
            .collect();
        let activity = match &request.customer {
            None => None,
            Some(customer) => {
                let order = Order::new(calc.total, calc.currency, request.basket.items().to_vec())?;
                let mut attributes = Attributes::default();
                attributes.insert(
                    AttributeName::parse("attributes", "application")?,
                    AttributeValue::String(app.to_string()),
                );
                Some(Activity::new(
                    id.clone(),
                    customer.clone(),
                    ActivityType::parse("type", "order")?,
                    at,
                    attributes,
                    Some(order),
                )?)
            }
        };
        Ok(OrderPlacement {
            id: id.clone(),
            application: app.clone(),
            customer: request.customer.clone(),
            at,
            redemptions,
            spending,
            activity,
            orders_seen: quote.loaded.first_order.then_some(quote.orders).flatten(),
            answer,
        })
    }

    /// The entered codes as looked up (unknown, or found with their uses).
    async fn codes(&self, request: &BasketRequest) -> StoreResult<Vec<EnteredCode>> {
        if request.codes.is_empty() {
            return Ok(Vec::new());
        }
        let valid: Vec<PromotionCode> = request.codes.iter().filter_map(|(_, c)| c.clone()).collect();
        let found = self.store.find_codes(&valid, request.customer.as_ref()).await?;
        Ok(request
            .codes
            .iter()
            .map(|(entered, code)| EnteredCode {
                code: entered.clone(),
                state: match code.as_ref().and_then(|c| found.iter().find(|f| &f.code == c)) {
                    None => CodeState::Unknown,
                    Some(f) => CodeState::Found(CodeUse {
                        promotion: f.promotion,
                        expires_at: f.expires_at,
                        max_uses: f.max_uses,
                        used: f.used,
                        max_uses_per_customer: f.max_uses_per_customer,
                        used_by_customer: f.used_by_customer,
                    }),
                },
            })
            .collect())
    }

    /// What budgeted promotions spent, as decimals.
    async fn spent(&self, loaded: &Loaded) -> StoreResult<HashMap<PromotionId, Decimal>> {
        if loaded.budgets.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self
            .store
            .budgets_spent()
            .await?
            .into_iter()
            .filter_map(|(id, spent)| {
                let digits = *loaded.budgets.get(&id)?;
                Some((id, Decimal::new(spent, digits)))
            })
            .collect())
    }
}

fn has_first_order(tree: &Tree<PromotionCondition>) -> bool {
    match tree {
        Tree::All(items) | Tree::Any(items) => items.iter().any(has_first_order),
        Tree::Not(inner) => has_first_order(inner),
        Tree::Leaf(leaf) => matches!(leaf, PromotionCondition::FirstOrder(_)),
    }
}

/// What `Promotions::inputs` read.
struct Inputs {
    held: Vec<QualifiedSegment>,
    unanswered: Vec<ServiceId>,
    /// The known customer as read (its facts).
    profile: Option<Arc<Cached>>,
    codes: Vec<EnteredCode>,
    spent: HashMap<PromotionId, Decimal>,
    availability: Arc<Availability>,
    /// The attributes of an anonymous or unknown customer.
    none: Attributes,
}

impl Inputs {
    fn context<'a>(&'a self, now: Timestamp, app: &'a ApplicationId, customer: Option<&'a CustomerId>) -> Context<'a> {
        Context {
            now,
            application: app,
            customer,
            attributes: self
                .profile
                .as_ref()
                .map_or(&self.none, |p| &p.profile.facts.attributes),
            previous_orders: self.profile.as_ref().map(|p| p.profile.facts.orders),
            segments: &self.held,
            availability: &self.availability,
            unanswered: &self.unanswered,
            codes: &self.codes,
            spent: &self.spent,
        }
    }
}

/// A stored promotion's definition, parsed with its id.
pub fn definition(stored: &StoredPromotion) -> Result<Promotion, Invalid> {
    let value: Value =
        serde_json::from_str(&stored.definition).map_err(|e| Invalid::new("definition", e.to_string()))?;
    parse_definition(stored.id, &value)
}

/// An amount with at most `digits` decimals, in minor units.
fn minor_units(amount: Decimal, digits: u32) -> i64 {
    let mut scaled = amount * Decimal::from(10_i64.pow(digits));
    scaled.rescale(0);
    i64::try_from(scaled).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_are_whole() {
        assert_eq!(minor_units(Decimal::new(1999, 2), 2), 1999);
        assert_eq!(minor_units(Decimal::new(5, 0), 0), 5);
        assert_eq!(minor_units(Decimal::new(12345, 3), 3), 12345);
        assert_eq!(
            Decimal::new(1999, 2),
            Decimal::new(minor_units(Decimal::new(1999, 2), 2), 2)
        );
    }
}
