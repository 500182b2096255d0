//! The promotions a product page can announce: those of the application that can apply
//! to this product for this customer — same eligibility as a calculation (time,
//! currency, target group and segment validity, budget), scope including the product —
//! each flagged when it still depends on the basket or on a code.
//!
//! Without a basket, basket conditions are unknown: a tree false whatever the basket
//! holds (a customer condition fails) rules the promotion out; one that depends on the
//! basket is listed and flagged. Combination is not decided here: it depends on what
//! else the basket will get.

use cohort_core::{Currency, Promotion};

use crate::promotion::catalog::Catalog;
use crate::promotion::compiled::Hot;
use crate::promotion::conditions::Facts;
use crate::promotion::context::Context;
use crate::promotion::eligibility::{self, Audience};

/// The product asked about.
#[derive(Debug, Clone, Copy)]
pub struct ProductQuery<'a> {
    pub sku: &'a str,
    pub categories: &'a [String],
    /// The currency its price is shown in.
    pub currency: Currency,
}

/// A promotion that can apply to the product.
#[derive(Debug, Clone, Copy)]
pub struct ProductOffer<'c> {
    pub promotion: &'c Promotion,
    /// Its conditions read the basket and may or may not hold.
    pub depends_on_basket: bool,
    /// It needs a code and no valid one for it was entered.
    pub requires_code: bool,
}

/// The promotions that can apply to the product, in rank order.
pub fn product_promotions<'c>(
    catalog: &'c Catalog,
    ctx: &Context<'_>,
    product: &ProductQuery<'_>,
) -> Vec<ProductOffer<'c>> {
    let interner = &catalog.interner;
    let sku = interner.skus.get(product.sku).copied();
    let mut categories: Vec<u32> = product
        .categories
        .iter()
        .filter_map(|c| interner.categories.get(c.as_str()).copied())
        .collect();
    categories.sort_unstable();
    categories.dedup();
    let facts = Facts::new(
        &catalog.conditions,
        ctx.attributes,
        ctx.customer.and(ctx.previous_orders),
    );
    let audience = Audience::new(catalog, ctx);
    let mut offers = Vec::new();
    for p in catalog.hot(ctx.application) {
        if !catalog.scopes[p.scope as usize].includes(sku, &categories)
            || eligibility::window(p, ctx.now).is_err()
            || p.currency.is_some_and(|c| c != product.currency)
            || audience.target(catalog, ctx, p.target).is_err()
            || eligibility::remaining_budget(p, catalog, ctx, product.currency).is_err()
        {
            continue;
        }
        let requires_code = match eligibility::code(p, ctx) {
            Ok(code) => p.requires_code && code.is_none(),
            Err(_) => true,
        };
        let depends_on_basket = p.conditions != Hot::NONE
            && match catalog.conditions.known(p.conditions, &facts) {
                Some(false) => continue,
                Some(true) => false,
                None => true,
            };
        offers.push(ProductOffer {
            promotion: &catalog.cold(p).definition,
            depends_on_basket,
            requires_code,
        });
    }
    offers
}
