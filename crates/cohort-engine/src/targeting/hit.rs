//! What a request tells the targeting engine: the page, where the visitor came from,
//! the device (parsed from the user agent by the caller, cached per user-agent string),
//! the location (from GeoIP by the caller), the preferred languages, the logged-in
//! customer, and the segments the page is tagged with.

use std::collections::BTreeMap;

use cohort_core::targeting::Platform;
use cohort_core::{CustomerId, SegmentId, Timestamp};

/// The device, as the user agent describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// Browser family, lower case (`chrome`, `firefox`, `mobile safari`…).
    pub browser: Option<String>,
    /// Operating system family, lower case (`windows`, `mac os x`, `ios`…).
    pub os: Option<String>,
    pub platform: Platform,
    /// Bots match no browser, operating system or platform condition.
    pub bot: bool,
}

impl Default for Device {
    fn default() -> Self {
        Self {
            browser: None,
            os: None,
            platform: Platform::Desktop,
            bot: false,
        }
    }
}

/// Where the visitor is, as far as known.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Location {
    /// ISO 3166 alpha-2, upper case.
    pub country: Option<String>,
    /// Latitude and longitude in degrees.
    pub coordinates: Option<(f64, f64)>,
}

/// The logged-in customer.
#[derive(Debug, Clone, Copy)]
pub struct CustomerView<'a> {
    pub id: &'a CustomerId,
    /// Its segments with their application counters.
    pub segments: &'a BTreeMap<SegmentId, u32>,
    pub profiling_consent: bool,
}

/// One request of a visitor.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    pub now: Timestamp,
    pub url: &'a str,
    /// `None`: a direct visit.
    pub referrer: Option<&'a str>,
    pub device: &'a Device,
    pub location: &'a Location,
    /// Preferred first, lower case (`de-at`, `de`, `en`).
    pub languages: &'a [String],
    pub customer: Option<CustomerView<'a>>,
    /// Segments the page is tagged with: each is tracked once for the visitor.
    pub page_segments: &'a [SegmentId],
}
