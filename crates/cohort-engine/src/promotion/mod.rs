//! Promotion decisions: a catalog compiled once from promotion definitions, a basket
//! calculation and a product lookup that are pure functions of the catalog and what
//! the caller passes in (time, application, customer, the segment provider's answer,
//! code look-ups, spent budgets).
//!
//! ```text
//! let catalog = Catalog::compile(promotions, &priorities)?;   // when promotions change
//! let result = calculate(&catalog, &context, &basket);        // per basket
//! let offers = product_promotions(&catalog, &context, &query); // per product page
//! ```

mod calculate;
mod calculation;
mod catalog;
mod compiled;
mod conditions;
mod context;
mod eligibility;
mod hash;
mod intern;
mod lookup;
mod money;
mod reasons;

pub use calculate::calculate;
pub use calculation::{Applied, CalculatedLine, Calculation, CodeResult, GiftLine, LineDiscount, NotApplied};
pub use catalog::{Availability, Catalog};
pub use context::{CodeProblem, CodeState, CodeUse, Context, EnteredCode};
pub(crate) use hash::{FastHasher, FastMap};
pub use lookup::{ProductOffer, ProductQuery, product_promotions};
pub use reasons::{CodeStatus, Reason};
